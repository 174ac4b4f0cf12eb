// Helpers shared by the tests/test_data_*.cpp suites: scratch dirs, a tiny tokenizer trained on
// generated text, file writers. Not a test itself (CMake only globs tests/test_*.cpp).
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "data/tokenizer.h"

namespace infini::testing {

inline std::string scratch_dir(const std::string& name) {
  const char* base = std::getenv("INFINI_TEST_TMP");
  // One directory per process: ctest runs the tests of one binary as parallel processes.
  const std::string dir = std::string(base && *base ? base : "/tmp") + "/" + name + "_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Deterministic English-like text: `lines` sentences from a small word list, with numbers.
inline std::string generated_text(int lines, uint64_t seed = 1) {
  static const char* words[] = {"the", "grass", "is", "green", "sky", "blue", "sun", "yellow", "here", "we",
                                "go", "there", "and", "back", "again", "pass", "key", "what", "remember", "it",
                                "river", "stone", "apple", "house", "of", "a", "in", "to", "light", "day",
                                "words", "these", "order", "sort", "reverse", "book", "verse", "from", "which", "is"};
  std::mt19937_64 rng(seed);
  std::string out;
  for (int i = 0; i < lines; ++i) {
    const int n = 4 + static_cast<int>(rng() % 10);
    std::string line;
    for (int k = 0; k < n; ++k) {
      std::string w = words[rng() % (sizeof(words) / sizeof(words[0]))];
      if (k == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
      line += (k ? " " : "") + w;
      if (rng() % 7 == 0) line += " " + std::to_string(rng() % 100000);
    }
    out += line + (rng() % 3 ? ". " : "? ");
    out += "\n";
    if (rng() % 5 == 0) out += "\n";  // paragraph breaks for the document splitter
  }
  return out;
}

// A 400-piece BPE model trained on generated text, once per test binary (in its scratch dir).
inline const Tokenizer& tiny_tokenizer(const std::string& suite) {
  static std::unique_ptr<Tokenizer> tok;
  if (!tok) {
    const std::string dir = scratch_dir(suite + "_tok");
    write_file(dir + "/train.txt", generated_text(3000));
    TokenizerTrainOptions opt;
    opt.inputs = {dir + "/train.txt"};
    opt.vocab_size = 400;
    opt.model_prefix = dir + "/tiny";
    opt.threads = 2;
    train_tokenizer(opt);
    tok = std::make_unique<Tokenizer>(Tokenizer::load(dir + "/tiny.model"));
  }
  return *tok;
}

}  // namespace infini::testing
