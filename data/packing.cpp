// Packing records into rows (data/packing.h).
#include "data/packing.h"

#include <algorithm>
#include <numeric>

#include <c10/util/Exception.h>

namespace infini {

int64_t PackPlan::length() const { return row_fill.empty() ? 0 : *std::max_element(row_fill.begin(), row_fill.end()); }

namespace {

// Where a record of length L goes after `fill` tokens of a row: right after them when it stays
// inside that segment (or starts one), else at the next segment boundary.
int64_t place_after(int64_t fill, int64_t L, int64_t N) {
  const int64_t in_segment = fill % N;
  if (in_segment == 0 || (L <= N && in_segment + L <= N)) return fill;
  return fill - in_segment + N;
}

}  // namespace

PackPlan pack_records(const std::vector<int64_t>& lengths, int64_t capacity, int64_t N) {
  TORCH_CHECK(N >= 1 && capacity >= 1, "pack_records: segment length and capacity must be >= 1");
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] > lengths[b]; });
  PackPlan plan;
  plan.places.resize(lengths.size());
  for (size_t i : order) {
    const int64_t L = lengths[i];
    TORCH_CHECK(L >= 1 && L <= capacity, "pack_records: record length ", L, " outside [1, ", capacity, "]");
    int64_t row = 0, at = 0;
    for (; row < plan.rows(); ++row) {
      at = place_after(plan.row_fill[static_cast<size_t>(row)], L, N);
      if (at + L <= capacity) break;
    }
    if (row == plan.rows()) {
      plan.row_fill.push_back(0);
      at = 0;
    }
    plan.places[i] = {row, at};
    plan.row_fill[static_cast<size_t>(row)] = at + L;
  }
  return plan;
}

std::vector<int64_t> row_positions(const std::vector<int64_t>& starts, const std::vector<int64_t>& lengths, int64_t T,
                                   int64_t N) {
  std::vector<int64_t> pos(static_cast<size_t>(T), -1);  // -1: padding, until counted below
  for (size_t r = 0; r < starts.size(); ++r)
    for (int64_t j = 0; j < lengths[r]; ++j) pos[static_cast<size_t>(starts[r] + j)] = j;
  bool pad_before = false;  // whether token t - 1 was padding
  for (int64_t t = 0; t < T; ++t) {
    int64_t& p = pos[static_cast<size_t>(t)];
    const bool pad = p < 0;
    if (pad) p = pad_before && t % N != 0 ? pos[static_cast<size_t>(t - 1)] + 1 : 0;
    pad_before = pad;
  }
  return pos;
}

}  // namespace infini
