// Builds the tiny data the trainer tests use, once per scratch dir: a generated corpus with
// learnable structure, a sentencepiece tokenizer, token shards and SFT records (via the CLI).
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "support/build_once.h"
#include "support/run_util.h"

namespace infini::test {

struct TinyData {
  std::string dir, tokenizer, shards, sft;
};

// A corpus of simple sentences over made-up words: next-token structure a 2-layer model learns fast.
inline void write_tiny_corpus(const std::string& path, int sentences, uint32_t seed) {
  std::mt19937 rng(seed);
  const std::vector<std::string> names = {"Ada", "Bram", "Cleo", "Dov", "Esme", "Finn", "Gus", "Hana"};
  const std::vector<std::string> things = {"apple", "stone", "river", "lamp", "book", "coin", "bell", "rope"};
  const std::vector<std::string> verbs = {"finds", "keeps", "gives", "sells", "paints", "hides"};
  const std::vector<std::string> places = {"the hill", "the market", "the old mill", "the shore", "the garden"};
  std::ofstream out(path);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  for (int i = 0; i < sentences; ++i) {
    const int n = 1 + static_cast<int>(rng() % 9);
    out << pick(names) << " " << pick(verbs) << " " << n << " " << pick(things) << (n > 1 ? "s" : "")
        << " at " << pick(places) << ". ";
    if (i % 4 == 3) out << "\n\n";
  }
}

// Creates (or reuses) tokenizer + shards + sft records under scratch dir `name`.
inline TinyData tiny_data(const std::string& name = "tiny_data") {
  TinyData d;
  d.dir = scratch_dir(name, /*fresh=*/false);
  d.tokenizer = d.dir + "/tok.model";
  d.shards = d.dir + "/shards";
  d.sft = d.dir + "/sft.jsonl";
  build_once(d.dir, [&] {
    write_tiny_corpus(d.dir + "/corpus.txt", 6000, 7);
    expect_infini_ok("tokenizer train --input " + d.dir + "/corpus.txt --vocab-size 320 --out " + d.dir + "/tok");
    expect_infini_ok("data prepare --tokenizer " + d.tokenizer + " --input " + d.dir + "/corpus.txt --out " +
                     d.shards + " --val-fraction 0.1");
    expect_infini_ok("data synth --task add --kind sft --count 200 --seed 1 --out " + d.sft);
  });
  return d;
}

}  // namespace infini::test
