// Fuzz target: the legacy llama2.c checkpoint reader (core/llama2c.h). Input: a whole file.
// Property: an accepted file gives a valid model config and every weight a memory-less Decoder of
// that config needs, with the config's shapes. Not import_llama2c's Decoder (built from the same).
#include <string>

#include "core/llama2c.h"
#include "tests/fuzz/targets.h"

namespace infini::fuzz {

Outcome fuzz_llama2c(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("llama2c/model.bin", data, size);
  return guarded([&](Outcome& o) {
    const Llama2cCheckpoint ck = read_llama2c(path);
    o.accepted = true;
    const ModelConfig& c = ck.config;
    if (std::string err = c.validate(); !err.empty()) {
      o.finding = "accepted with an invalid config: " + err;
      return;
    }
    const size_t expected = 2 + 9 * static_cast<size_t>(c.n_layers) + (c.tie_embeddings ? 0 : 1);
    if (ck.weights.size() != expected) {
      o.finding = "accepted with " + std::to_string(ck.weights.size()) + " weights, expected " + std::to_string(expected);
      return;
    }
    const auto& emb = ck.weights.at("tok_embeddings.weight");
    if (emb.dim() != 2 || emb.size(0) != c.vocab_size || emb.size(1) != c.d_model)
      o.finding = "tok_embeddings.weight does not have the shape [vocab_size, d_model]";
  });
}

}  // namespace infini::fuzz
