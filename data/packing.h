// Packing: where the records of a batch go when they share rows (data.pack), so that the rows
// hold few padding tokens and the model can still keep every record apart (core/packed_rows.h
// states the rule: a record longer than one segment begins on a segment boundary, a shorter one
// either does or lies inside one segment). Plain arithmetic on lengths; not the tensors
// (data/loader.cpp fills them) nor the model's masks.
#pragma once
#include <cstdint>
#include <vector>

namespace infini {

struct PackedPlace {
  int64_t row = 0, offset = 0;  // the record's first token is at tokens[row, offset]
};

struct PackPlan {
  std::vector<PackedPlace> places;  // one per record, in the order given
  std::vector<int64_t> row_fill;    // per row: the end of its last record
  int64_t rows() const { return static_cast<int64_t>(row_fill.size()); }
  int64_t length() const;  // the longest fill: the batch's T
};

// First fit, longest record first (ties in the order given): each record goes into the first row
// where it fits after that row's last record (at once if it stays inside that segment or starts
// one, else at the next segment boundary), or into a new row. Every length must be in
// [1, capacity].
PackPlan pack_records(const std::vector<int64_t>& lengths, int64_t capacity, int64_t segment_len);

// The positions of a row (core/packed_rows.h) given where its records are: each record's tokens
// count 0, 1, 2, ...; a run of padding counts from 0, and again from 0 at every segment boundary.
// starts/lengths: the row's records; T: the row's length.
std::vector<int64_t> row_positions(const std::vector<int64_t>& starts, const std::vector<int64_t>& lengths, int64_t T,
                                   int64_t segment_len);

}  // namespace infini
