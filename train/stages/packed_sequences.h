// PackedSequences: data.pack for the reward, dpo and ppo stages. Their batches come as sequences
// of one record each (pairs: chosen rows then rejected rows; ppo: rollouts), right-padded. This
// packs them into shared rows (data/packing.h, the rule of core/packed_rows.h), runs the model over
// the packed rows and maps what it returns back to the unpacked layout, so the stage's loss is
// computed as before. Not the sft stage's packing (the loader packs sft records, data/loader.h).
#pragma once
#include <cstdint>

#include <torch/types.h>

#include "core/decoder.h"

namespace infini {

struct PackedSequences {
  torch::Tensor tokens;     // (R', T') int64, padded with the pad id given
  torch::Tensor positions;  // (R', T') int64: each token's index inside its sequence (core/packed_rows.h)
  torch::Tensor from;       // (R * T) int64: for each unpacked (row, t), its flat index in (R', T')
                            // (t past the sequence's length: any index; what lands there is padding)
  int64_t rows = 0, length = 0;  // R and T of the unpacked batch
};

// tokens (R, T) int64, lengths (R) int64 in [1, T]: sequence r is tokens[r, :lengths[r]]. Rows of
// up to max(capacity, T) tokens; segments of segment_len.
PackedSequences pack_sequences(const torch::Tensor& tokens, const torch::Tensor& lengths, int64_t capacity,
                               int64_t segment_len, int64_t pad_id);

// out (R', T', ...) computed on the packed rows -> (R, T, ...) in the unpacked layout.
torch::Tensor unpack(const torch::Tensor& out, const PackedSequences& p);

// model->trunk (or with `head`, model->forward) over rows of one sequence each, tokens (R, T) of
// real lengths (R), through packed rows of up to `capacity` tokens (the model's segments), read
// back into the unpacked layout: (R, T, D), or the head's (R, T, ...); padding positions hold
// finite values of no meaning. Logs how the first batch was packed, once (`logged` is then set).
torch::Tensor packed_forward(Decoder& model, const torch::Tensor& tokens, const torch::Tensor& lengths,
                             int64_t capacity, bool head, bool& logged);

}  // namespace infini
