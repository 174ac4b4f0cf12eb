// StreamState: what the streaming path carries between calls - every layer's memory (M, z) in fp32
// and the current unfinished segment's K/V cache (keys both as written to memory and rotated). Its size does not grow with the tokens seen.
// Not the model: core/decoder.h creates and advances it (Decoder::new_state / forward_stream).
#pragma once
#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace infini {

struct LayerStreamState {
  torch::Tensor M;        // (B, Hkv, Dh, Dh) fp32; undefined when memory is disabled
  torch::Tensor z;        // (B, Hkv, Dh) fp32; undefined when memory is disabled
  torch::Tensor k_cache;  // (B, Hkv, N, Dh) fp32, UN-rotated keys of the current segment (first pos valid)
  torch::Tensor kr_cache; // (B, Hkv, N, Dh) fp32, the same keys rotated (RoPE at their segment position)
  torch::Tensor v_cache;  // (B, Hkv, N, Dh) fp32
  torch::Tensor w_cache;  // (B, Hkv, N) fp32 write gates of the current segment; only with memory.write_gate
};

struct StreamState {
  std::vector<LayerStreamState> layers;
  int64_t batch = 0;
  int64_t segment_len = 0;  // N
  int64_t tokens_seen = 0;  // tokens fed so far; tokens_seen % N of them sit in the caches
  // --no-memory evaluation: completed segments are not written to memory, so every memory read
  // is exactly 0 and each segment sees only itself (with the gate's local share).
  bool no_memory = false;

  int64_t position() const { return segment_len > 0 ? tokens_seen % segment_len : 0; }
  // Total bytes held by all tensors: fixed at creation, whatever the number of tokens processed.
  int64_t bytes() const;
  // Zeroes every M and z (the caches and the position are kept).
  void clear_memory();
  // A deep copy: advancing the copy leaves this state as it is (to score a continuation and then
  // decode another one from the same point).
  StreamState clone() const;
};

// A zero state for `n_layers` layers: caches sized for one full segment, so bytes() is constant.
// `write_gate`: the layers have a write gate (memory.write_gate), whose values the cache keeps too.
StreamState make_stream_state(int64_t batch, int64_t n_layers, int64_t kv_heads, int64_t head_dim,
                              int64_t segment_len, bool memory, torch::Device device = torch::kCPU,
                              bool write_gate = false);

}  // namespace infini
