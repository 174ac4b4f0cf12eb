// Synthetic tasks: the passkey retrieval prompt (exact token lengths) and small verifiable tasks
// (add, reverse, sort, kjv_book) for SFT, reward modelling and PPO demos. Not their evaluation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace infini {

class Tokenizer;

// The passkey prompt of the Infini-attention paper (docs/design.md): task sentence, filler, the key sentence at `depth`,
// more filler, then "What is the pass key? The pass key is".
struct PasskeyCase {
  std::vector<int> ids;      // exactly length_tokens ids, ids[0] = BOS
  std::string key;           // e.g. "12345"
  int64_t key_position = 0;  // index in ids of the first token of " <key>" inside the key sentence
  std::string text;          // decode(ids[1:]): the prompt as text ("" above text_up_to tokens)
};

// Throws infini::Error when length_tokens is too short to hold the fixed sentences. depth in [0, 1]
// places the key sentence after that share of the filler tokens. Up to `text_up_to` tokens the
// filler's cut is nudged until the text re-encodes to the same ids and `text` is filled (SFT
// records are text); above it the ids alone are built (evaluation feeds ids; decoding 1M ids to
// text costs hundreds of MB).
PasskeyCase make_passkey(const Tokenizer& tok, int64_t length_tokens, double depth, int digits, uint64_t seed,
                         int64_t text_up_to = 65536);

struct SynthOptions {
  std::string task;          // passkey | add | reverse | sort | kjv_book
  std::string kind = "sft";  // sft {prompt, response} | preference {prompt, chosen, rejected} | prompts {prompt, answer}
  int64_t count = 100;
  uint64_t seed = 0;
  // passkey
  int64_t length = 1024;   // prompt tokens incl. BOS (needs tokenizer)
  double depth = -1;       // in [0, 1]; < 0 = uniform random per record
  int digits = 5;          // passkey digits; add: digits per operand (at most)
  int items = 4;           // reverse/sort: words per list
  std::string corpus = "data/corpora/kjv.txt";  // kjv_book: the text from scripts/get_data.sh
};

// The records, one JSON object each. tok is needed by passkey only (may be nullptr otherwise).
std::vector<nlohmann::json> make_synthetic(const SynthOptions& opt, const Tokenizer* tok);

// kjv.txt as written by scripts/get_data.sh: chapters separated by blank lines, each opening with
// a "<Book> <chapter>" line followed by one verse per line. Returns (book, verse) pairs.
std::vector<std::pair<std::string, std::string>> read_kjv_verses(const std::string& path);

}  // namespace infini
