// Packing the sequences of a batch into shared rows and reading the results back (packed_sequences.h).
#include "train/stages/packed_sequences.h"

#include <vector>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "data/packing.h"

namespace infini {

PackedSequences pack_sequences(const torch::Tensor& tokens, const torch::Tensor& lengths, int64_t capacity,
                               int64_t N, int64_t pad_id) {
  TORCH_CHECK(tokens.dim() == 2 && lengths.dim() == 1 && lengths.size(0) == tokens.size(0),
              "pack_sequences: tokens (R, T) and lengths (R) expected");
  const int64_t R = tokens.size(0), T = tokens.size(1);
  const torch::Tensor cpu_tokens = tokens.to(torch::kCPU).contiguous();
  const torch::Tensor cpu_lengths = lengths.to(torch::kCPU, torch::kLong).contiguous();
  const std::vector<int64_t> len(cpu_lengths.data_ptr<int64_t>(), cpu_lengths.data_ptr<int64_t>() + R);
  const PackPlan plan = pack_records(len, std::max(capacity, T), N);
  PackedSequences p;
  p.rows = R;
  p.length = T;
  const int64_t Rp = plan.rows(), Tp = plan.length();
  p.tokens = torch::full({Rp, Tp}, pad_id, torch::kLong);
  p.positions = torch::empty({Rp, Tp}, torch::kLong);
  p.from = torch::zeros({R * T}, torch::kLong);
  int64_t* out = p.tokens.data_ptr<int64_t>();
  int64_t* from = p.from.data_ptr<int64_t>();
  const int64_t* in = cpu_tokens.data_ptr<int64_t>();
  std::vector<std::vector<int64_t>> starts(static_cast<size_t>(Rp)), lens(static_cast<size_t>(Rp));
  for (int64_t r = 0; r < R; ++r) {
    const PackedPlace& at = plan.places[static_cast<size_t>(r)];
    const int64_t n = len[static_cast<size_t>(r)];
    std::copy(in + r * T, in + r * T + n, out + at.row * Tp + at.offset);
    for (int64_t t = 0; t < n; ++t) from[r * T + t] = at.row * Tp + at.offset + t;
    starts[static_cast<size_t>(at.row)].push_back(at.offset);
    lens[static_cast<size_t>(at.row)].push_back(n);
  }
  int64_t* pos = p.positions.data_ptr<int64_t>();
  for (int64_t r = 0; r < Rp; ++r) {
    const std::vector<int64_t> rp = row_positions(starts[static_cast<size_t>(r)], lens[static_cast<size_t>(r)], Tp, N);
    std::copy(rp.begin(), rp.end(), pos + r * Tp);
  }
  p.tokens = p.tokens.to(tokens.device());
  p.positions = p.positions.to(tokens.device());
  p.from = p.from.to(tokens.device());
  return p;
}

torch::Tensor unpack(const torch::Tensor& out, const PackedSequences& p) {
  std::vector<int64_t> flat{-1}, shape{p.rows, p.length};
  for (int64_t d = 2; d < out.dim(); ++d) {
    flat.push_back(out.size(d));
    shape.push_back(out.size(d));
  }
  return out.reshape(flat).index_select(0, p.from).view(shape);
}

torch::Tensor packed_forward(Decoder& model, const torch::Tensor& tokens, const torch::Tensor& lengths,
                             int64_t capacity, bool head, bool& logged) {
  const PackedSequences p = pack_sequences(tokens, lengths, capacity, model->config().segment_len, 0);
  if (!logged) {
    logged = true;
    spdlog::info("data.pack: the first batch's {} sequences ({} x {} tokens) in {} rows of {}", p.rows, p.rows,
                 p.length, p.tokens.size(0), p.tokens.size(1));
  }
  torch::Tensor out = model->trunk(p.tokens, p.positions);  // the head on the packed rows: fewer positions
  return unpack(head ? model->head(out) : out, p);
}

}  // namespace infini
