// PackedSequences: the reward and dpo stages' data.pack. Their batches come as sequences of one
// record each (chosen rows, then rejected rows, right-padded); this packs them into shared rows
// (data/packing.h, the rule of core/packed_rows.h), runs nothing itself, and maps what the model
// returns for the packed rows back to the unpacked layout, so the stage's loss is unchanged.
// Not the sft stage's packing (the loader packs sft records, data/loader.h).
#pragma once
#include <cstdint>

#include <torch/types.h>

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

// Logs, the first time only (`done` is then set), how the batch was packed.
void log_packing_once(bool& done, const PackedSequences& p);

// out (R', T', ...) computed on the packed rows -> (R, T, ...) in the unpacked layout.
torch::Tensor unpack(const torch::Tensor& out, const PackedSequences& p);

}  // namespace infini
