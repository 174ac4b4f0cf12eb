// DecoderBlock: the two residual branches. The residual stream stays fp32 under autocast
// (the branches compute in bf16 from a bf16 norm output; their outputs are added to the fp32 stream).
#include "core/decoder_block.h"

namespace infini {

DecoderBlockImpl::DecoderBlockImpl(const ModelConfig& cfg) {
  attention_norm = register_module("attention_norm", RMSNorm(cfg.d_model, cfg.norm_eps));
  attention = register_module("attention", InfiniAttention(cfg));
  ffn_norm = register_module("ffn_norm", RMSNorm(cfg.d_model, cfg.norm_eps));
  feed_forward = register_module("feed_forward", FeedForward(cfg.d_model, cfg.ffn_dim()));
}

torch::Tensor DecoderBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mem0, torch::Tensor* mem_after,
                                        torch::Tensor* writes, const PackedRows* packed) {
  torch::Tensor h = x + attention(attention_norm(x), mem0, mem_after, writes, packed);
  return h + feed_forward(ffn_norm(h));
}

torch::Tensor DecoderBlockImpl::forward_stream(const torch::Tensor& x, LayerStreamState& st, int64_t pos,
                                               bool no_memory) {
  torch::Tensor h = x + attention->forward_stream(attention_norm(x), st, pos, no_memory);
  return h + feed_forward(ffn_norm(h));
}

}  // namespace infini
