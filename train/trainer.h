// The one training loop every stage shares: set-up, resume, accumulation, clipping, schedule,
// logging, evaluation, checkpoints and signals. A stage supplies only how a batch becomes a loss.
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>

#include "core/decoder.h"
#include "data/batch.h"
#include "train/config.h"

namespace infini {

struct LossOutput {
  torch::Tensor loss;                     // scalar fp32, mean over what `weight` counts
  double weight = 1.0;                    // tokens (or pairs) the mean is over, for weighted averages
  std::map<std::string, double> metrics;  // extras averaged with the same weight (e.g. accuracy)
  // When set, the loop calls it (under the same autocast) right after loss.backward(): gradient
  // that needs the loss's own gradients first (lm_loss with prefix writes). It accumulates into the
  // parameters' .grad with the loss's scale.
  std::function<void()> backward_more;
};

struct StageSpec {
  std::string name;                      // "pretrain", "sft", "reward"
  Head head = Head::lm;                  // lm or scalar
  bool needs_tokenizer = false;          // records must be rendered (sft, reward)
  std::function<LossOutput(Decoder&, const Batch&)> loss;
  // init_from: tensors of the source checkpoint this stage does not use (e.g. output.weight for
  // a reward model made from an LM) and tensors it keeps freshly initialised (score.weight).
  std::set<std::string> init_from_ignore;
  std::set<std::string> init_from_fresh;
};

// Runs `spec` with `cfg` to cfg.train.max_steps, resuming from RUN_DIR/checkpoints/latest when
// cfg.resume == "auto". Returns 0 when done, kExitInterrupted after SIGINT/SIGTERM (a checkpoint
// is written first), kExitNonFinite when a NaN/inf stopped it.
int run_trainer(const Config& cfg, const StageSpec& spec);

// Mean next-token cross entropy over the targets selected by loss_mask, from the final hidden
// states through the LM head (train/lm_head_loss.h: fused, only the counted rows are computed).
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
