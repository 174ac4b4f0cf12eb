// PackedRows: how the parallel forward keeps apart several records packed into one row, so that
// each record computes exactly what it would alone in a row of its own (data.pack, docs/design.md:
// "Packed rows"). Built from each token's position inside its record.
// Not how records are packed into rows (data/packing.h) nor the attention itself.
//
// The rule that makes it exact: a record longer than one segment starts on a segment boundary;
// a shorter one either does too or lies wholly inside one segment. Then, per segment of a row:
//   - local attention is causal and within one record (a block-diagonal mask);
//   - a token whose record began in an earlier segment reads the memory; any other token reads
//     nothing (which is what an empty memory returns: exactly 0);
//   - the memory is emptied before a segment that a record starts at, so what the earlier
//     records wrote is never read (a segment that a record continues into holds only that record);
//   - RoPE uses the position inside the record modulo the segment length, which is what the
//     record alone would use (positions restart with every segment).
#pragma once
#include <cstdint>

#include <torch/types.h>

namespace infini {

struct PackedRows {
  torch::Tensor attend;    // (B, S, N, N) bool: query i may attend key j of its segment
  torch::Tensor reads;     // (B, S, N) float: 1 where the token reads the memory, else 0
  torch::Tensor keep;      // (B, S) float: 0 where the memory is emptied before the segment, else 1
  torch::Tensor rope_pos;  // (B, S, N) int64: the RoPE position of each token
};

// positions (B, T) int64: each token's index inside its record (0 at its first token), any run of
// padding counted as records of its own. Checks the rule above and throws infini::Error naming the
// first row and token that break it. T is padded to whole segments (the padding forms a record of
// its own).
PackedRows packed_rows(const torch::Tensor& positions, int64_t segment_len);

// Positions for rows of one record each (what an unpacked batch is): 0, 1, 2, ... in every row.
torch::Tensor unpacked_positions(int64_t batch, int64_t length);

}  // namespace infini
