// InfiniAttention: one layer of segment-local causal attention (RoPE) plus a compressive memory
// read/updated across segments, mixed per head by a learned fp32 gate. Parallel and streaming paths.
// Not the memory arithmetic itself (core/compressive_memory.h) nor the norms/residuals (decoder_block).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "core/linear.h"
#include "core/model_config.h"
#include "core/packed_rows.h"
#include "core/stream_state.h"

namespace infini {

// Intermediate results of one forward, for tests and inspection.
struct AttentionParts {
  torch::Tensor out;    // (B, T, D) after wo
  torch::Tensor a_dot;  // (B, T, H, Dh) local attention (only when asked for)
  torch::Tensor a_mem;  // (B, T, H, Dh) memory read, fp32 (only when asked for and memory is on)
};

struct InfiniAttentionImpl : torch::nn::Module {
  explicit InfiniAttentionImpl(const ModelConfig& cfg);

  // Training path, parallel over segments. x (B, T, D), any T -> (B, T, D). `mem0` is the packed
  // memory [M | z] (B, Hkv, Dh, Dh + 1) before x's first segment; undefined means empty memory.
  // `mem_after`, when given, receives the packed memory after x's last segment (T whole segments);
  // `writes` the sum of what each segment wrote into it (memory_writes_packed: the gradient of the
  // writes alone, each from the memory before it held fixed).
  // `packed`, when given, keeps the records of packed rows apart (core/packed_rows.h); it starts
  // from empty memory, so it takes no mem0, mem_after or writes.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mem0 = {}, torch::Tensor* mem_after = nullptr,
                        torch::Tensor* writes = nullptr, const PackedRows* packed = nullptr);
  AttentionParts forward_parts(const torch::Tensor& x, bool keep_parts, const torch::Tensor& mem0 = {},
                               torch::Tensor* mem_after = nullptr, torch::Tensor* writes = nullptr,
                               const PackedRows* packed = nullptr);
  // Streaming: x (B, t, D) are the next t tokens; `pos` is the position of x[:, 0] inside its
  // segment. Splits at segment boundaries, appends to the cache and folds each completed segment
  // into (M, z). Meant for inference (call under NoGradGuard): the caches are written in place.
  torch::Tensor forward_stream(const torch::Tensor& x, LayerStreamState& st, int64_t pos,
                               bool no_memory);

  ModelConfig cfg;
  Linear wq{nullptr};  // (H*Dh, D)
  Linear wk{nullptr};  // (Hkv*Dh, D)
  Linear wv{nullptr};  // (Hkv*Dh, D)
  Linear wo{nullptr};  // (D, H*Dh)
  torch::Tensor gate;             // (H) fp32 beta; registered only when memory is enabled
  // The write gate w = sigmoid(x W^T + b) per token and kv head (memory.write_gate only): (Hkv, D)
  // starting at 0 and (Hkv) starting at memory.write_gate_bias, fp32.
  torch::Tensor write_gate, write_gate_bias;

 private:
  torch::Tensor stream_piece(const torch::Tensor& x, LayerStreamState& st, int64_t pos, bool no_memory);
  // The write gate of tokens x (..., D) -> (..., Hkv) in fp32; undefined without memory.write_gate.
  torch::Tensor write_gate_of(const torch::Tensor& x) const;
};
TORCH_MODULE(InfiniAttention);

}  // namespace infini
