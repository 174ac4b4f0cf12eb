// The language-model loss (see lm_loss.h): masked next-token loss, loss-free prefix, prefix writes.
#include "train/stages/lm_loss.h"

#include <algorithm>
#include <vector>

#include "core/compressive_memory.h"
#include "core/stream_state.h"
#include "train/stages/lm_head_loss.h"

namespace infini {

std::pair<torch::Tensor, int64_t> masked_lm_loss(const torch::Tensor& hidden, const torch::Tensor& head_weight,
                                                 const torch::Tensor& tokens, const torch::Tensor& loss_mask) {
  const int64_t D = hidden.size(-1);
  auto mask = loss_mask.slice(1, 1).reshape({-1}).to(torch::kFloat);  // (B*(T-1))
  auto rows = mask.nonzero().squeeze(1);                               // counted targets only
  const int64_t count = static_cast<int64_t>(mask.sum().item<double>());
  auto h = hidden.slice(1, 0, -1).reshape({-1, D}).index_select(0, rows);   // (n, D)
  auto target = tokens.slice(1, 1).reshape({-1}).index_select(0, rows);    // (n)
  auto weight = mask.index_select(0, rows) / static_cast<double>(std::max<int64_t>(1, count));
  return {fused_lm_head_loss(h, head_weight, target, weight), count};
}

int64_t loss_free_prefix(const ModelConfig& mc, const torch::Tensor& loss_mask) {
  if (!mc.memory.enabled || mc.memory.gradient != MemoryGradient::detach) return 0;
  const int64_t N = mc.segment_len;
  torch::Tensor counted = loss_mask.slice(1, 1).ne(0).any(0);  // (T-1): target t+1 counted somewhere
  if (!counted.any().item<bool>()) return 0;
  const int64_t first_row = counted.nonzero().min().item<int64_t>();  // hidden row of the first target
  return first_row / N * N;  // < T - 1: the tail keeps every counted row
}

namespace {

LossOutput lm_loss_impl(Decoder& model, const Batch& b, bool prefix_writes, double weight, int64_t chunk_segments) {
  // Packed rows (data.pack) hold short records, each starting from empty memory: no prefix.
  const int64_t P = b.positions.defined() ? 0 : loss_free_prefix(model->config(), b.loss_mask);
  const bool writes = prefix_writes && P > 0 && torch::GradMode::is_enabled();
  torch::Tensor hidden;
  std::vector<LayerStreamState> start;  // with writes: the memory the rest starts from, as leaves
  if (b.positions.defined()) {
    hidden = model->trunk(b.tokens, b.positions);
  } else if (P == 0) {
    hidden = model->trunk(b.tokens);
  } else {
    // Detached memory: the whole segments before the first counted target get no gradient, so
    // they only advance the memory (no activations kept) and the rest starts from it.
    StreamState st = model->new_state(b.tokens.size(0));
    {
      torch::NoGradGuard g;
      // 64 segments a chunk: bounded activations (~0.5 GB at any length on the demo model) and
      // matmuls large enough for several threads (2 threads: ~1.6x the speed of 4-segment chunks).
      model->advance(st, b.tokens.narrow(1, 0, P), 64);
    }
    if (writes) {
      for (auto& l : st.layers) {
        if (!l.M.defined()) continue;
        l.M.requires_grad_(true);
        l.z.requires_grad_(true);
      }
      start = st.layers;
    }
    hidden = model->trunk(b.tokens.narrow(1, P, b.tokens.size(1) - P), st);
  }
  const torch::Tensor tokens = b.tokens.narrow(1, P, b.tokens.size(1) - P);
  const torch::Tensor mask = b.loss_mask.narrow(1, P, b.loss_mask.size(1) - P);
  auto [loss, count] = masked_lm_loss(hidden, model->lm_head_weight(), tokens, mask);
  LossOutput out;
  out.loss = loss;
  out.weight = static_cast<double>(count);
  if (writes) {
    const torch::Tensor prefix = b.tokens.narrow(1, 0, P);
    const int64_t N = model->config().segment_len, B = b.tokens.size(0);
    out.backward_more = [model, prefix, layers = std::move(start), N, B, weight, chunk_segments]() mutable {
      std::vector<torch::Tensor> g;  // dloss/d[M | z] per layer, zeros where none arrived
      for (const auto& l : layers) {
        if (!l.M.defined()) {
          g.emplace_back();
          continue;
        }
        auto grad_or_zero = [](const torch::Tensor& t) { return t.grad().defined() ? t.grad() : torch::zeros_like(t); };
        g.push_back(memory_pack(grad_or_zero(l.M), grad_or_zero(l.z)) * weight);
      }
      StreamState s = model->new_state(B);
      const int64_t T = prefix.size(1);
      for (int64_t at = 0; at < T; at += chunk_segments * N) {
        const int64_t L = std::min(chunk_segments * N, T - at);
        std::vector<torch::Tensor> w = model->memory_writes(s, prefix.narrow(1, at, L));
        torch::Tensor objective;
        for (size_t i = 0; i < w.size(); ++i) {
          if (!w[i].defined()) continue;
          torch::Tensor term = (w[i] * g[i]).sum();
          objective = objective.defined() ? objective + term : term;
        }
        if (objective.defined() && objective.requires_grad()) objective.backward();
      }
    };
  }
  return out;
}

}  // namespace

LossOutput lm_loss(Decoder& model, const Batch& b) { return lm_loss_impl(model, b, false, 0.0, 0); }

LossOutput lm_loss_prefix_writes(Decoder& model, const Batch& b, double weight, int64_t chunk_segments) {
  return lm_loss_impl(model, b, true, weight, chunk_segments);
}

}  // namespace infini
