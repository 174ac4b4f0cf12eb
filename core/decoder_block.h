// DecoderBlock: pre-norm residual block, x + attn(norm(x)) then h + ffn(norm(h)).
// Not the attention or FFN internals (core/infini_attention.h, core/swiglu.h).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "core/infini_attention.h"
#include "core/model_config.h"
#include "core/rmsnorm.h"
#include "core/stream_state.h"
#include "core/swiglu.h"

namespace infini {

struct DecoderBlockImpl : torch::nn::Module {
  explicit DecoderBlockImpl(const ModelConfig& cfg);
  // (B, T, D) -> (B, T, D); mem0 / mem_after / writes: the attention's memory before / after x
  // and the sum of x's writes into it (InfiniAttention::forward).
  // `packed`: records packed into rows (core/packed_rows.h).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mem0 = {}, torch::Tensor* mem_after = nullptr,
                        torch::Tensor* writes = nullptr, const PackedRows* packed = nullptr);
  torch::Tensor forward_stream(const torch::Tensor& x, LayerStreamState& st, int64_t pos, bool no_memory);

  RMSNorm attention_norm{nullptr};
  InfiniAttention attention{nullptr};
  RMSNorm ffn_norm{nullptr};
  FeedForward feed_forward{nullptr};
};
TORCH_MODULE(DecoderBlock);

}  // namespace infini
