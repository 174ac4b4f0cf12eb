// Synthetic tasks: passkey prompts built token by token, and small tasks whose answers can be
// checked by rule. Not evaluation: train/ scores model outputs against these answers.
#include "data/synth.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <regex>

#include <fmt/format.h>

#include "core/error.h"
#include "data/tokenizer.h"

namespace infini {
namespace {

const char* kTask =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.";
const char* kFiller = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
const char* kQuestion = " What is the pass key? The pass key is";

const std::vector<std::string> kWords = {
    "apple", "river", "stone", "cloud", "tiger", "lemon", "house", "piano", "green", "ocean",
    "candle", "forest", "bridge", "pepper", "silver", "window", "garden", "rabbit", "yellow", "winter",
    "anchor", "basket", "castle", "dragon", "engine", "falcon", "guitar", "harbor", "island", "jacket",
    "kettle", "ladder", "marble", "needle", "orange", "pencil", "quartz", "rocket", "saddle", "tunnel"};

uint64_t uniform(std::mt19937_64& rng, uint64_t n) { return rng() % n; }  // n small: bias negligible

std::string random_key(std::mt19937_64& rng, int digits) {
  std::string key(1, static_cast<char>('1' + uniform(rng, 9)));
  for (int i = 1; i < digits; ++i) key += static_cast<char>('0' + uniform(rng, 10));
  return key;
}

std::vector<int> cycle(const std::vector<int>& unit, int64_t n) {
  std::vector<int> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(unit[static_cast<size_t>(i) % unit.size()]);
  return out;
}

std::string join_words(const std::vector<std::string>& w) {
  std::string out;
  for (const auto& s : w) out += (out.empty() ? "" : " ") + s;
  return out;
}

std::vector<std::string> pick_words(std::mt19937_64& rng, int n) {
  std::vector<std::string> pool = kWords, out;
  for (int i = 0; i < n; ++i) {
    const size_t j = static_cast<size_t>(uniform(rng, pool.size()));
    out.push_back(pool[j]);
    pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(j));
  }
  return out;
}

// A permutation of w different from `avoid` (w has at least two distinct words).
std::vector<std::string> shuffled_unlike(std::mt19937_64& rng, std::vector<std::string> w, const std::vector<std::string>& avoid) {
  do {
    for (size_t i = w.size() - 1; i > 0; --i) std::swap(w[i], w[static_cast<size_t>(uniform(rng, i + 1))]);
  } while (w == avoid);
  return w;
}

struct Item {
  std::string prompt, answer, wrong;
  std::string response;  // the SFT response ("" = answer)
};

}  // namespace

PasskeyCase make_passkey(const Tokenizer& tok, int64_t length_tokens, double depth, int digits, uint64_t seed,
                         int64_t text_up_to) {
  if (digits < 1 || digits > 18) throw Error(fmt::format("passkey: digits must be in [1, 18], got {}", digits));
  if (!(depth >= 0.0 && depth <= 1.0)) throw Error(fmt::format("passkey: depth must be in [0, 1], got {}", depth));
  std::mt19937_64 rng(seed);
  PasskeyCase c;
  c.key = random_key(rng, digits);
  const std::vector<int> task = tok.encode(kTask), unit = tok.encode(kFiller), question = tok.encode(kQuestion);
  const std::vector<int> needle_a = tok.encode(" The pass key is"), key = tok.encode(" " + c.key);
  const std::vector<int> needle_b = tok.encode(". Remember it. " + c.key + " is the pass key.");
  const int64_t fixed = static_cast<int64_t>(1 + task.size() + needle_a.size() + key.size() + needle_b.size() + question.size());
  const int64_t filler = length_tokens - fixed;
  if (filler < 0)
    throw Error(fmt::format("passkey: a length of {} tokens is too short; the fixed sentences alone take {}", length_tokens, fixed));
  auto build = [&](int64_t before) {
    std::vector<int> ids;
    ids.reserve(static_cast<size_t>(length_tokens));
    ids.push_back(tok.bos_id());
    ids.insert(ids.end(), task.begin(), task.end());
    const auto fb = cycle(unit, before), fa = cycle(unit, filler - before);
    ids.insert(ids.end(), fb.begin(), fb.end());
    ids.insert(ids.end(), needle_a.begin(), needle_a.end());
    c.key_position = static_cast<int64_t>(ids.size());
    ids.insert(ids.end(), key.begin(), key.end());
    ids.insert(ids.end(), needle_b.begin(), needle_b.end());
    ids.insert(ids.end(), fa.begin(), fa.end());
    ids.insert(ids.end(), question.begin(), question.end());
    return ids;
  };
  const int64_t before = static_cast<int64_t>(std::llround(depth * static_cast<double>(filler)));
  c.ids = build(before);
  // Filler cut mid-word can re-tokenize differently as text; up to text_up_to tokens nudge the cut
  // until decode -> encode gives the same ids back.
  if (length_tokens <= text_up_to) {
    for (int64_t shift = 0; shift <= 16; ++shift) {
      bool found = false;
      for (int64_t s : {before - shift, before + shift}) {
        if (s < 0 || s > filler) continue;
        auto ids = build(s);
        const std::string text = tok.decode(std::vector<int>(ids.begin() + 1, ids.end()));
        if (tok.encode(text) == std::vector<int>(ids.begin() + 1, ids.end())) {
          c.ids = std::move(ids);
          c.text = text;
          found = true;
          break;
        }
      }
      if (found) break;
    }
    if (c.text.empty()) {  // nothing round-trips: keep the ids exact, the text approximate
      c.ids = build(before);
      c.text = tok.decode(std::vector<int>(c.ids.begin() + 1, c.ids.end()));
    }
  }
  return c;
}

std::vector<std::pair<std::string, std::string>> read_kjv_verses(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot open (run scripts/get_data.sh, or pass --corpus)", path));
  static const std::regex header(R"(^((?:[1-3] )?[A-Z][A-Za-z ]*) ([0-9]+)$)");
  std::vector<std::pair<std::string, std::string>> out;
  std::string line, book;
  bool at_block_start = true;
  int64_t line_no = 0;
  std::smatch m;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      at_block_start = true;
      continue;
    }
    if (at_block_start) {
      if (!std::regex_match(line, m, header))
        throw Error(fmt::format("{}:{}: expected a chapter heading like \"Genesis 1\", found \"{}\"", path, line_no,
                                line.substr(0, 60)));
      book = m[1];
      at_block_start = false;
      continue;
    }
    out.emplace_back(book, line);
  }
  if (out.empty()) throw Error(fmt::format("{}: no verses found", path));
  return out;
}

std::vector<nlohmann::json> make_synthetic(const SynthOptions& opt, const Tokenizer* tok) {
  const std::string& t = opt.task;
  if (t != "passkey" && t != "add" && t != "reverse" && t != "sort" && t != "kjv_book")
    throw Error(fmt::format("data synth: unknown --task '{}' (passkey, add, reverse, sort, kjv_book)", t));
  if (opt.kind != "sft" && opt.kind != "preference" && opt.kind != "prompts")
    throw Error(fmt::format("data synth: --kind must be sft, preference or prompts, got '{}'", opt.kind));
  if (opt.count < 1) throw Error(fmt::format("data synth: --count must be at least 1, got {}", opt.count));
  if (t == "passkey" && !tok) throw Error("data synth: --task passkey needs --tokenizer (lengths are in tokens)");
  if ((t == "reverse" || t == "sort") && (opt.items < 2 || opt.items > static_cast<int>(kWords.size())))
    throw Error(fmt::format("data synth: --items must be in [2, {}], got {}", kWords.size(), opt.items));
  if (t == "add" && (opt.digits < 1 || opt.digits > 17))
    throw Error(fmt::format("data synth: --digits must be in [1, 17] for add, got {}", opt.digits));
  if (t == "passkey" && opt.depth > 1) throw Error(fmt::format("data synth: --depth must be in [0, 1], got {}", opt.depth));
  std::vector<std::pair<std::string, std::string>> verses;
  std::vector<std::string> books;
  if (t == "kjv_book") {
    verses = read_kjv_verses(opt.corpus);
    for (const auto& v : verses)
      if (books.empty() || books.back() != v.first) books.push_back(v.first);
    if (books.size() < 2) throw Error(fmt::format("{}: kjv_book needs at least two books", opt.corpus));
  }
  std::mt19937_64 rng(opt.seed);
  std::vector<nlohmann::json> out;
  for (int64_t i = 0; i < opt.count; ++i) {
    Item it;
    if (t == "passkey") {
      const double depth = opt.depth >= 0 ? opt.depth : std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      // Records are text, whatever their length.
      const PasskeyCase c = make_passkey(*tok, opt.length, depth, opt.digits, rng(), opt.length);
      it.prompt = c.text;
      it.answer = c.key;
      it.response = " " + c.key;
      std::string wrong;
      do wrong = random_key(rng, opt.digits);
      while (wrong == c.key);
      it.wrong = " " + wrong;
    } else if (t == "add") {
      const uint64_t hi = static_cast<uint64_t>(std::pow(10.0, opt.digits));
      const uint64_t a = uniform(rng, hi), b = uniform(rng, hi);
      it.prompt = fmt::format("What is {} + {}?", a, b);
      it.answer = std::to_string(a + b);
      // a plausible slip: one digit of the sum off by one
      const uint64_t sum = a + b;
      const int ndig = static_cast<int>(it.answer.size());
      const uint64_t step = static_cast<uint64_t>(std::pow(10.0, static_cast<double>(uniform(rng, static_cast<uint64_t>(ndig)))));
      it.wrong = std::to_string((sum >= step && (rng() & 1)) ? sum - step : sum + step);
    } else if (t == "reverse" || t == "sort") {
      const auto words = pick_words(rng, opt.items);
      std::vector<std::string> ans = words;
      if (t == "reverse") {
        std::reverse(ans.begin(), ans.end());
        it.prompt = "Reverse the order of these words: " + join_words(words);
      } else {
        std::sort(ans.begin(), ans.end());
        it.prompt = "Sort these words alphabetically: " + join_words(words);
      }
      it.answer = join_words(ans);
      it.wrong = join_words(shuffled_unlike(rng, ans, ans));
    } else {
      const auto& v = verses[static_cast<size_t>(uniform(rng, verses.size()))];
      it.prompt = "Which book of the Bible is this verse from? \"" + v.second + "\"";
      it.answer = v.first;
      do it.wrong = books[static_cast<size_t>(uniform(rng, books.size()))];
      while (it.wrong == it.answer);
    }
    const std::string response = it.response.empty() ? it.answer : it.response;
    if (opt.kind == "sft") out.push_back({{"prompt", it.prompt}, {"response", response}});
    else if (opt.kind == "preference")
      out.push_back({{"prompt", it.prompt}, {"chosen", response}, {"rejected", it.wrong}});
    else out.push_back({{"prompt", it.prompt}, {"answer", it.answer}});
  }
  return out;
}

}  // namespace infini
