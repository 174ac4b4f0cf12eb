// The language-model loss of the pretrain and sft stages: masked next-token cross entropy through
// the fused LM head, the loss-free prefix that detached memory allows, and prefix writes.
// Not the loop (train/run/trainer.h) nor the fused kernel itself (train/stages/lm_head_loss.h).
#pragma once
#include <cstdint>
#include <utility>

#include <torch/types.h>

#include "core/decoder.h"
#include "core/model_config.h"
#include "data/batch.h"
#include "train/run/trainer.h"

namespace infini {

// Mean next-token cross entropy over the targets selected by loss_mask, from the final hidden
// states through the LM head (train/stages/lm_head_loss.h: fused, only the counted rows are computed).
// hidden (B,T,D), head_weight (V,D), tokens (B,T), loss_mask (B,T): position t predicts
// tokens[:, t+1] and counts when loss_mask[:, t+1] is 1. Returns the mean and the number counted.
std::pair<torch::Tensor, int64_t> masked_lm_loss(const torch::Tensor& hidden, const torch::Tensor& head_weight,
                                                 const torch::Tensor& tokens, const torch::Tensor& loss_mask);

// How many leading tokens (whole segments) of a batch no loss reaches: with memory.gradient: detach,
// the segments before the one holding the first counted target (loss_mask (B, T)) get no gradient
// at all. 0 under bptt, without memory, or when the first target sits in segment 0.
int64_t loss_free_prefix(const ModelConfig& mc, const torch::Tensor& loss_mask);

// The language-model loss of pretrain and sft: masked_lm_loss over model->trunk(b.tokens),
// weighted by the number of counted targets. The loss-free prefix only advances the memory, without
// gradient, in chunks (Decoder::advance: bounded activations, no backward through it), and the rest
// runs from that memory: the same loss and gradients, so a long SFT record costs about one forward
// pass plus its last segments' backward.
LossOutput lm_loss(Decoder& model, const Batch& b);
// The same with train.prefix_gradient: writes. The memory the rest starts from is a leaf that
// requires grad, so backward leaves dloss/d[M | z] on it per layer; backward_more then runs the
// prefix again in chunks of `chunk_segments` with gradient (Decoder::memory_writes) and backpropagates
// <dloss/d[M | z], sum of the chunk's writes>: every earlier segment's write gets the gradient the
// loss puts on the memory, each taken from the memory before it (no gradient through reads across
// segments). With one layer and update: linear this is exactly bptt's gradient for losses in the
// rest's first segment; under delta it treats d(memory later)/d(write) as the identity.
// Activations stay bounded by one chunk; the prefix costs a forward-only pass plus a forward and
// backward.
// `weight` multiplies the writes' gradient.
LossOutput lm_loss_prefix_writes(Decoder& model, const Batch& b, double weight = 1.0, int64_t chunk_segments = 16);

}  // namespace infini
