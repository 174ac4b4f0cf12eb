// PPO rollouts: responses sampled from the actor through the streaming path, packed with their
// prompts into one right-padded batch with the mask of response tokens. Not scoring or updates.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>

#include "core/decoder.h"
#include "core/generate.h"
#include "data/batch.h"

namespace infini {

// B prompt + response sequences; A = T - 1 action positions (position t predicts tokens[:, t + 1]).
struct Rollout {
  torch::Tensor tokens;          // (B, T) int64, right-padded with the pad id
  torch::Tensor lengths;         // (B) int64: prompt + response (incl. EOS when produced)
  torch::Tensor prompt_lengths;  // (B) int64
  torch::Tensor action_mask;     // (B, A) fp32: 1 where tokens[:, t + 1] is a response token
  torch::Tensor ended_eos;       // (B) fp32: 1 when the response ends with EOS
  std::vector<std::vector<int64_t>> responses;  // response ids without the EOS
  std::vector<std::string> answers;             // the prompts' reference answers
};

// Samples one response per prompt of `prompts` (tokens (B, P) right-padded, lengths (B)).
// Prompts of equal length decode together (StreamState has one position for its whole batch, so
// each length is its own group); each group's prompts are fed once, then one token per step for the
// whole group (no prefix recompute).
// Row b draws its tokens from row_gens[b] alone, so its response does not depend on the other rows
// of the batch (one generator per row; none for greedy, temperature 0, which draws nothing).
// Stops after EOS or max_new_tokens. vocab_limit > 0 samples only ids below it (the tokenizer's
// vocabulary when the model's embedding table is larger).
Rollout sample_rollout(Decoder& actor, const Batch& prompts, const SamplingOptions& sampling, int64_t max_new_tokens,
                       int64_t eos_id, int64_t pad_id, std::vector<at::Generator>& row_gens, int64_t vocab_limit = 0);

// Each prompt of `b` repeated `times` times in a row (prompt i's copies are rows i*times ... i*times +
// times - 1), answers too: a rollout that samples several responses per prompt.
Batch repeat_prompts(const Batch& b, int64_t times);

}  // namespace infini
