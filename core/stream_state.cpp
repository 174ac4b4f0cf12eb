// StreamState allocation, size accounting, copying and memory reset.
// The arithmetic that advances it lives in core/infini_attention.cpp.
#include "core/stream_state.h"

namespace infini {

int64_t StreamState::bytes() const {
  int64_t n = 0;
  auto add = [&](const torch::Tensor& t) {
    if (t.defined()) n += t.numel() * static_cast<int64_t>(t.element_size());
  };
  for (const auto& l : layers) {
    add(l.M);
    add(l.z);
    add(l.k_cache);
    add(l.kr_cache);
    add(l.v_cache);
    add(l.w_cache);
  }
  return n;
}

void StreamState::clear_memory() {
  torch::NoGradGuard g;
  for (auto& l : layers) {
    if (l.M.defined()) l.M.zero_();
    if (l.z.defined()) l.z.zero_();
  }
}

StreamState StreamState::clone() const {
  StreamState s = *this;
  auto copy = [](torch::Tensor& t) {
    if (t.defined()) t = t.clone();
  };
  for (auto& l : s.layers) {
    copy(l.M);
    copy(l.z);
    copy(l.k_cache);
    copy(l.kr_cache);
    copy(l.v_cache);
    copy(l.w_cache);
  }
  return s;
}

StreamState make_stream_state(int64_t batch, int64_t n_layers, int64_t kv_heads, int64_t head_dim,
                              int64_t segment_len, bool memory, torch::Device device, bool write_gate) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(device);
  StreamState s;
  s.batch = batch;
  s.segment_len = segment_len;
  for (int64_t i = 0; i < n_layers; ++i) {
    LayerStreamState l;
    if (memory) {
      l.M = torch::zeros({batch, kv_heads, head_dim, head_dim}, f32);
      l.z = torch::zeros({batch, kv_heads, head_dim}, f32);
    }
    l.k_cache = torch::zeros({batch, kv_heads, segment_len, head_dim}, f32);
    l.kr_cache = torch::zeros({batch, kv_heads, segment_len, head_dim}, f32);
    l.v_cache = torch::zeros({batch, kv_heads, segment_len, head_dim}, f32);
    if (memory && write_gate) l.w_cache = torch::zeros({batch, kv_heads, segment_len}, f32);
    s.layers.push_back(std::move(l));
  }
  return s;
}

}  // namespace infini
