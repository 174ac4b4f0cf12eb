// Rule rewards (see train/rlhf/rule_rewards.h): exact or numeric match of a response against its reference answer.
// Deliberately strict: anything after the answer (other than whitespace) makes it wrong.
#include "train/rlhf/rule_rewards.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "core/error.h"

namespace infini {
namespace {

bool parse_number(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

}  // namespace

std::string trim_text(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

double rule_reward(const std::string& response, const std::string& answer, RuleMatch mode) {
  const std::string r = trim_text(response), a = trim_text(answer);
  if (mode == RuleMatch::exact) return r == a ? 1.0 : 0.0;
  double x = 0, y = 0;
  if (!parse_number(r, &x) || !parse_number(a, &y)) return 0.0;
  return std::fabs(x - y) <= 1e-6 * std::max(1.0, std::fabs(y)) ? 1.0 : 0.0;
}

double rule_reward(const std::string& response, const std::string& answer, const std::string& mode) {
  RuleMatch m;
  if (!parse_choice(mode, &m))
    throw ConfigError(fmt::format("ppo.rule: expected {}, found '{}'", choice_list<RuleMatch>(), mode));
  return rule_reward(response, answer, m);
}

}  // namespace infini
