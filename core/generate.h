// Token sampling (greedy, temperature, top-k, top-p) and the streaming generation loop.
// Not text: prompts and outputs are token ids; tokenization is data/tokenizer.h's business.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include "core/decoder.h"

namespace infini {

struct SamplingOptions {
  double temperature = 1.0;  // 0 = greedy (argmax); else logits / temperature
  int64_t top_k = 0;         // keep the k most likely tokens (0 = all)
  double top_p = 1.0;        // keep the smallest set of most likely tokens whose mass >= top_p (1 = all)
};

// A CPU generator seeded with `seed`: the same seed gives the same samples.
at::Generator make_generator(uint64_t seed);

// logits (B, V) -> next tokens (B,) int64. Ties in greedy mode go to the lowest id.
// Throws infini::Error on options out of range (temperature < 0 or not finite, top_k < 0, top_p not
// in (0, 1]).
torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& opts, at::Generator& gen);

// As sample_next, but row j draws from gens[j] alone (B generators), so a row's samples do not depend
// on which other rows share its batch: a data-parallel rollout samples what one process would.
torch::Tensor sample_next_rows(const torch::Tensor& logits, const SamplingOptions& opts,
                               const std::vector<at::Generator*>& gens);

// Probabilities (B, V) sample_next draws from (after temperature, top-k, top-p); for tests and PPO.
torch::Tensor sampling_probs(const torch::Tensor& logits, const SamplingOptions& opts);

struct GenerateOptions {
  SamplingOptions sampling;
  int64_t max_new_tokens = 64;  // at most this many tokens after the prompt
  int64_t eos_id = 2;           // stop after producing it (-1 = never stop early)
  uint64_t seed = 0;            // for temperature > 0
};

// Throws infini::Error when an option is out of range (see sample_next; max_new_tokens < 0).
void check_generate_options(const GenerateOptions& opts);

// Generates after `prompt` (one sequence) through the streaming path: the prompt is fed once, then
// one token per step (the prefix is never recomputed). Returns prompt + new tokens; `on_token`
// sees each new token as it is produced.
std::vector<int64_t> generate(Decoder& model, const std::vector<int64_t>& prompt, const GenerateOptions& opts,
                              const std::function<void(int64_t)>& on_token = {});

}  // namespace infini
