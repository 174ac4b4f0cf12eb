// The one training loop every stage shares: set-up, resume, accumulation, clipping, schedule,
// logging, evaluation, checkpoints and signals. A stage supplies only how a batch becomes a loss.
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>

#include "core/decoder.h"
#include "data/batch.h"
#include "train/config/config.h"

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

// What a batch's loss is a mean over, known before the forward pass: the counted target tokens
// (language-model stages) or the rows (pairs: reward, dpo). LossOutput::weight must equal it.
double counted_targets(const Batch& b);
double batch_rows(const Batch& b);

struct StageSpec {
  std::string name;                      // "pretrain", "sft", "reward"
  Head head = Head::lm;                  // lm or scalar
  bool needs_tokenizer = false;          // records must be rendered (sft, reward)
  std::function<LossOutput(Decoder&, const Batch&)> loss;
  std::function<double(const Batch&)> weight = counted_targets;  // what the loss averages over
  // init_from: tensors of the source checkpoint this stage does not use (e.g. output.weight for
  // a reward model made from an LM) and tensors it keeps freshly initialised (score.weight).
  std::set<std::string> init_from_ignore;
  std::set<std::string> init_from_fresh;
};

// Runs `spec` with `cfg` to cfg.train.max_steps, resuming from RUN_DIR/checkpoints/latest when
// cfg.resume is auto. Returns 0 when done, kExitInterrupted after SIGINT/SIGTERM (a checkpoint
// is written first), kExitNonFinite when a NaN/inf stopped it.
int run_trainer(const Config& cfg, const StageSpec& spec);

}  // namespace infini
