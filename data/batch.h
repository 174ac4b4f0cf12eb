// Batch: what the loader hands a training or evaluation step, for every stage.
// Not how batches are made (data/loader.h): plain tensors and strings only.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace infini {

struct Batch {
  torch::Tensor tokens;     // (B, T) int64, right-padded with the pad id
  torch::Tensor loss_mask;  // (B, T) float32: 1 where tokens[b, t] is a target whose prediction
                            // (made at t-1) counts in the loss; 0 at t = 0, on prompts and padding
  torch::Tensor lengths;    // (B) int64: real (unpadded) lengths (packed rows: the row's real tokens)
  // Packed rows only (data.pack; undefined otherwise): each token's index inside its record, the
  // padding counted as records of their own (core/packed_rows.h), and how many records the rows hold.
  torch::Tensor positions;  // (B, T) int64
  int64_t records = 0;
  // Preference pairs: tokens/loss_mask/lengths hold the chosen side, these the rejected side,
  // padded to the same T as the chosen side.
  torch::Tensor rejected_tokens;   // (B, T) int64
  torch::Tensor rejected_mask;     // (B, T) float32
  torch::Tensor rejected_lengths;  // (B) int64
  // Prompts (PPO): tokens holds the prompts ([BOS] + template, no EOS), mask all 0.
  std::vector<std::string> answers;  // reference answers, "" when none

  int64_t size() const { return tokens.defined() ? tokens.size(0) : 0; }  // rows
  // Real tokens in the batch (both sides of a pair).
  int64_t num_tokens() const {
    int64_t n = lengths.defined() ? lengths.sum().item<int64_t>() : 0;
    if (rejected_lengths.defined()) n += rejected_lengths.sum().item<int64_t>();
    return n;
  }
};

}  // namespace infini
