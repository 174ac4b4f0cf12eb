// Parsing of --lengths / --depths style lists (see token_counts.h).
#include "train/cli/token_counts.h"

#include <cctype>
#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace infini {
namespace {

std::string trim_item(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(trim_item(item));
  return out;
}

}  // namespace

int64_t parse_token_count(const std::string& text, const std::string& what) {
  const std::string t = trim_item(text);
  size_t digits = 0;
  while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
  const std::string suffix = t.substr(digits);
  int64_t mult = 0;
  if (suffix.empty()) mult = 1;
  else if (suffix == "k" || suffix == "K") mult = 1024;
  else if (suffix == "m" || suffix == "M") mult = 1048576;
  if (digits == 0 || digits > 12 || mult == 0)
    throw Error(what + ": expected a token count like 8k, 1m or 5000, found '" + text + "'");
  const int64_t n = std::stoll(t.substr(0, digits)) * mult;
  if (n < 1) throw Error(what + ": expected a token count >= 1, found '" + text + "'");
  return n;
}

std::vector<int64_t> parse_token_counts(const std::string& text, const std::string& what) {
  std::vector<int64_t> out;
  for (const auto& item : split_commas(text)) out.push_back(parse_token_count(item, what));
  if (out.empty()) throw Error(what + ": expected a comma-separated list like 8k,32k, found '" + text + "'");
  return out;
}

std::vector<double> parse_depths(const std::string& text) {
  std::vector<double> out;
  for (const auto& item : split_commas(text)) {
    char* end = nullptr;
    const double d = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !(d >= 0.0 && d <= 1.0))
      throw Error("--depths: expected numbers in [0, 1] like 0,0.5,1, found '" + item + "'");
    out.push_back(d);
  }
  if (out.empty()) throw Error("--depths: expected a list like 0,0.5,1, found '" + text + "'");
  return out;
}

}  // namespace infini
