// The masks of packed rows (core/packed_rows.h), computed once per batch from the positions.
#include "core/packed_rows.h"

#include <string>

#include <torch/torch.h>

#include "core/error.h"

namespace infini {

torch::Tensor unpacked_positions(int64_t batch, int64_t length) {
  return torch::arange(length, torch::kLong).unsqueeze(0).expand({batch, length}).contiguous();
}

PackedRows packed_rows(const torch::Tensor& positions, int64_t N) {
  TORCH_CHECK(positions.dim() == 2 && positions.scalar_type() == torch::kLong,
              "packed_rows: positions must be (B, T) int64, got ", positions.sizes());
  const int64_t B = positions.size(0), T = positions.size(1), S = (T + N - 1) / N, P = S * N;
  auto i64 = torch::TensorOptions().dtype(torch::kLong).device(positions.device());
  torch::Tensor pos = positions;
  if (P > T) pos = torch::cat({pos, torch::arange(P - T, i64).unsqueeze(0).expand({B, P - T})}, 1);  // (B, P)

  torch::Tensor t = torch::arange(P, i64).unsqueeze(0);  // (1, P)
  torch::Tensor start = t - pos;                           // (B, P): where each token's record begins
  torch::Tensor seg_start = t.div(N, "floor") * N;         // (1, P)
  // Every position is 0 (a record begins) or one more than the one before it.
  torch::Tensor steps = torch::cat({pos.narrow(1, 0, 1) == 0,
                                    (pos.narrow(1, 1, P - 1) == 0) |
                                        (pos.narrow(1, 1, P - 1) == pos.narrow(1, 0, P - 1) + 1)},
                                   1);
  torch::Tensor fits = (start >= seg_start) | (start.remainder(N) == 0);  // inside one segment, or from a boundary
  torch::Tensor ok = steps & fits & (pos >= 0);
  if (!ok.all().item<bool>()) {
    torch::Tensor bad = (~ok).nonzero().to(torch::kCPU);  // (n, 2), row-major order
    const int64_t r = bad[0][0].item<int64_t>(), p = bad[0][1].item<int64_t>();
    const int64_t here = pos[r][p].item<int64_t>();
    const std::string why = !steps[r][p].item<bool>()
                                ? "expected 0 or one more than the position before it"
                                : "a record that begins inside a segment must end in it (segments of " +
                                      std::to_string(N) + " tokens), and a longer one must begin on a boundary";
    throw Error("packed rows: row " + std::to_string(r) + ", token " + std::to_string(p) + ": position " +
                std::to_string(here) + ": " + why);
  }

  PackedRows out;
  torch::Tensor starts = start.view({B, S, N});
  torch::Tensor causal = torch::ones({N, N}, i64.dtype(torch::kBool)).tril();
  out.attend = (starts.unsqueeze(-1) == starts.unsqueeze(-2)) & causal;  // (B, S, N, N)
  out.reads = (start < seg_start).to(torch::kFloat).view({B, S, N});
  out.keep = (pos.view({B, S, N}).select(2, 0) != 0).to(torch::kFloat);  // (B, S)
  out.rope_pos = pos.remainder(N).view({B, S, N});
  return out;
}

}  // namespace infini
