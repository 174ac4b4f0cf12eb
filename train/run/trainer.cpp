// The shared training loop (see trainer.h): one place where a step happens; the run around it
// (set-up, resume, checkpoints, signals) is RunSession's.
// Order per step: micro-batches -> backward -> (data parallel: gradient sum over the ranks) ->
// non-finite check -> clip -> AdamW -> log/eval/checkpoint.
#include "train/run/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/compat.h"
#include "core/compressive_memory.h"
#include "core/error.h"
#include "core/flops.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "train/dist/comm.h"
#include "train/dist/grad_sync.h"
#include "train/dist/replicas.h"
#include "train/run/adamw.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/run/session.h"
#include "train/run/metrics_log.h"
#include "train/run/runtime.h"
#include "train/run/schedule.h"
#include "train/run/signals.h"
#include "train/run/stopwatch.h"
#include "train/run/trainable.h"

namespace fs = std::filesystem;

namespace infini {
namespace {

using Clock = std::chrono::steady_clock;

// Batches come from the loader in pageable host memory. On CUDA each tensor goes through
// page-locked memory and is sent without waiting, so the copy overlaps the kernels still queued
// (LibTorch's pinned-memory cache keeps the buffer until its copy has run).
Batch to_device(const Batch& b, const torch::Device& d) {
  if (d.is_cpu()) return b;
  Batch o = b;
  auto mv = [&](torch::Tensor& t) {
    if (t.defined()) t = t.pin_memory().to(d, /*non_blocking=*/true);
  };
  mv(o.tokens); mv(o.loss_mask); mv(o.lengths); mv(o.positions);
  mv(o.rejected_tokens); mv(o.rejected_mask); mv(o.rejected_lengths);
  return o;
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

// Weighted means over micro-batches. The loss stays a device tensor until read(), so a step's
// micro-batches queue their work without waiting for the device.
struct Averager {
  double weight = 0, loss = 0;
  torch::Tensor loss_sum;  // sum of loss x weight, on the loss's device, until read()
  std::map<std::string, double> sums;
  void add(const LossOutput& o) {
    weight += o.weight;
    torch::Tensor l = o.loss.detach().to(torch::kDouble) * o.weight;
    loss_sum = loss_sum.defined() ? loss_sum + l : l;
    for (const auto& [k, v] : o.metrics) sums[k] += v * o.weight;
  }
  void read() {
    if (loss_sum.defined()) loss = loss_sum.item<double>();
  }
  // [loss x weight, weight, metric sums by key] as one fp64 tensor, and back (the keys stay).
  torch::Tensor pack() const {
    std::vector<double> v{loss, weight};
    for (const auto& kv : sums) v.push_back(kv.second);
    return torch::tensor(v, torch::kFloat64);
  }
  void unpack(const torch::Tensor& t) {
    const double* p = t.data_ptr<double>();
    loss = p[0];
    weight = p[1];
    size_t i = 2;
    for (auto& kv : sums) kv.second = p[i++];
  }
  double mean_loss() const { return weight > 0 ? loss / weight : 0.0; }
};

// One run of a stage: the session around the loop, and what the loop keeps between steps.
class Trainer {
 public:
  Trainer(const Config& cfg, const StageSpec& spec)
      : cfg_(cfg), spec_(spec), session_(cfg, spec.name, spec.needs_tokenizer), rt_(session_.runtime()),
        model_(build_model()),
        opt_(make_param_groups(*model_, cfg.optim.weight_decay, cfg.optim.gate_lr_mult), cfg.optim.betas[0],
             cfg.optim.betas[1], cfg.optim.eps),
        comm_(session_.comm()),
        train_loader_(cfg.data, Split::train, session_.tokenizer(), cfg.train.batch_size,
                      static_cast<uint64_t>(cfg.run.seed), comm_->rank(), comm_->world_size()) {
    if (Loader::has_split(cfg.data, Split::val))
      val_loader_.emplace(cfg.data, Split::val, session_.tokenizer(), cfg.train.batch_size,
                          static_cast<uint64_t>(cfg.run.seed), comm_->rank(), comm_->world_size());
    if (cfg.data.pack && cfg.data.format == "sft") {  // preference pairs are packed by their stages
      train_loader_.pack_rows(cfg.model.segment_len);
      if (val_loader_) val_loader_->pack_rows(cfg.model.segment_len);
    }
    if (comm_->distributed()) {
      std::vector<torch::Tensor> params;
      for (const auto& g : opt_.groups())
        for (const auto& p : g.params) params.push_back(p);
      grad_sync_.emplace(comm_, params, static_cast<int64_t>(cfg.run.dist_bucket_mb * 1e6));
      spdlog::info("data parallel: {} ranks, {} rows each of a global batch of {}; {:.1f} MB of gradients in {} "
                   "buckets", comm_->world_size(), cfg.train.batch_size / comm_->world_size(), cfg.train.batch_size,
                   static_cast<double>(grad_sync_->bytes()) / 1e6, grad_sync_->buckets());
    }
    session_.add(model_part("", model_, &opt_, session_.model_metadata()));
    session_.add(json_part(
        "tokens_seen", [this] { return nlohmann::json(tokens_seen_); },
        [this](const nlohmann::json& j, const std::string&) { tokens_seen_ = j.get<double>(); }));
    session_.add(loader_part("loader", train_loader_));
    // Written for readers of the checkpoint; the schedule is a function of the step.
    session_.add({"schedule",
                  [this](const std::string&, nlohmann::json& st) {
                    st["schedule"] = {{"lr", lr_at(cfg_.schedule, cfg_.optim.lr, cfg_.train.max_steps, step_)}};
                  },
                  nullptr});
    session_.add(rng_part(rt_.device));
  }

  int run();

 private:
  Decoder build_model();
  void init_weights();
  void evaluate();
  // One optimizer step (grad_accum micro-batches); false when the loss or gradient was not finite
  // and train.on_nonfinite is stop.
  bool train_step();
  void log_step(double lr, double grad_norm, const Averager& avg);
  void show_progress(double loss) const;

  const Config& cfg_;
  const StageSpec& spec_;
  RunSession session_;
  const Runtime rt_;
  Decoder model_;
  AdamW opt_;
  std::shared_ptr<Comm> comm_;
  std::optional<GradSync> grad_sync_;  // data parallel only
  Loader train_loader_;
  bool pack_logged_ = false;  // data.pack: the first packed batch was logged
  std::optional<Loader> val_loader_;
  int64_t step_ = 0, first_step_ = 0, nonfinite_count_ = 0;
  double tokens_seen_ = 0;
  Clock::time_point start_, window_start_;
  // Where the window's time went: waiting for batches, forward+backward (the model step proper),
  // clipping + AdamW + zeroing gradients. The rest of window_s is logging, evaluation and checkpoints.
  // Exact on CPU; on CUDA kernels run ahead of the host, so part of the backward lands in optim_s.
  // comm_s (data parallel): the part of optim_s spent summing gradients over the ranks, waiting for
  // the slowest rank included.
  double window_tokens_ = 0, window_data_s_ = 0, window_model_s_ = 0, window_optim_s_ = 0, window_comm_s_ = 0;
};

Decoder Trainer::build_model() {
  Decoder model(cfg_.model, spec_.head);
  prepare_trainable(model, cfg_);
  model->to(rt_.device);
  return model;
}

void Trainer::init_weights() {
  if (cfg_.init_from.empty()) return;
  const int64_t added = init_weights_from(cfg_.init_from, model_, spec_.init_from_ignore, spec_.init_from_fresh,
                                          cfg_.init_extra_layers);
  spdlog::info("initialised weights from {}", cfg_.init_from);
  if (added) spdlog::info("init_extra_layers: the last {} of {} blocks start fresh", added, cfg_.model.n_layers);
}

void Trainer::evaluate() {
  if (!val_loader_) return;
  torch::NoGradGuard ng;
  model_->eval();
  Averager avg;
  for (const Batch& raw : val_loader_->all_batches(cfg_.train.eval_batches > 0 ? cfg_.train.eval_batches : -1)) {
    const Batch b = to_device(raw, rt_.device);
    LossOutput out;
    {
      compat::AutocastGuard ac(rt_.bf16, rt_.device.type());
      out = spec_.loss(model_, b);
    }
    avg.add(out);
  }
  avg.read();
  if (comm_->distributed()) {  // every rank evaluated its share of the samples
    torch::Tensor t = avg.pack();
    comm_->all_reduce_sum(t, "the evaluation all-reduce");
    avg.unpack(t);
  }
  model_->train();
  nlohmann::json rec{{"kind", "eval"}, {"step", step_}, {"val_loss", avg.mean_loss()},
                     {"val_ppl", std::exp(avg.mean_loss())}};
  std::string extra;
  for (const auto& [k, v] : avg.sums) {
    rec["val_" + k] = v / avg.weight;
    extra += fmt::format(" val_{} {:.4f}", k, v / avg.weight);
  }
  session_.metrics().write(rec);
  spdlog::info("eval step {} val_loss {:.4f} val_ppl {:.2f}{}", step_, avg.mean_loss(), std::exp(avg.mean_loss()),
               extra);
}

bool Trainer::train_step() {
  const int64_t this_step = step_ + 1;
  Averager avg;
  double step_tokens = 0;
  // The step's loss is the mean over everything its micro-batches count on every rank (tokens, or
  // pairs), so each micro-batch's mean loss is scaled by its share of that total before backward:
  // the summed gradient is the global mean's, on one rank or many, whatever the padding.
  auto t0 = Clock::now();
  std::vector<Batch> micro(static_cast<size_t>(cfg_.train.grad_accum));
  std::vector<double> weights(micro.size());
  double weight_here = 0;
  for (size_t i = 0; i < micro.size(); ++i) {
    micro[i] = train_loader_.next();
    if (micro[i].positions.defined() && !pack_logged_) {
      pack_logged_ = true;
      spdlog::info("data.pack: the first batch's {} records in {} rows of {} tokens", micro[i].records,
                   micro[i].size(), micro[i].tokens.size(1));
    }
    weights[i] = spec_.weight(micro[i]);
    weight_here += weights[i];
  }
  double weight_all = weight_here;
  if (comm_->distributed()) {
    torch::Tensor w = torch::full({1}, weight_here, torch::kFloat64);
    comm_->all_reduce_sum(w, "the batch-weight all-reduce");
    weight_all = w.item<double>();
  }
  window_data_s_ += seconds_since(t0);
  for (size_t i = 0; i < micro.size(); ++i) {
    t0 = Clock::now();
    const Batch b = to_device(micro[i], rt_.device);
    const double w = weights[i];
    window_data_s_ += seconds_since(t0);
    t0 = Clock::now();
    LossOutput out;
    {
      compat::AutocastGuard ac(rt_.bf16, rt_.device.type());
      out = spec_.loss(model_, b);
    }
    TORCH_CHECK(out.weight == w, "stage ", spec_.name, ": the loss counted ", out.weight, " but the batch weight is ", w);
    // The step's last backward sums the gradients as they arrive (not with a second backward:
    // backward_more's gradients would arrive after their buckets had started).
    if (grad_sync_ && i + 1 == micro.size() && !out.backward_more) grad_sync_->arm();
    // weight_all / w is grad_accum exactly when the micro-batches weigh the same (integers).
    if (w > 0) (out.loss / (weight_all / w)).backward();
    if (out.backward_more && w > 0) {
      compat::AutocastGuard ac(rt_.bf16, rt_.device.type());
      out.backward_more();
    }
    window_model_s_ += seconds_since(t0);
    avg.add(out);
    step_tokens += static_cast<double>(b.num_tokens());
  }
  const auto optim_t0 = Clock::now();
  double grad_norm = 0;
  if (grad_sync_) {
    avg.read();
    torch::Tensor extra = torch::cat({avg.pack(), torch::tensor({step_tokens}, torch::kFloat64)});
    const auto comm_t0 = Clock::now();
    grad_sync_->reduce(extra);
    window_comm_s_ += seconds_since(comm_t0);
    avg.unpack(extra);
    step_tokens = extra[extra.numel() - 1].item<double>();
    grad_norm = grad_norm_tensor(opt_.groups()).item<double>();
  } else {
    // The step's one wait for the device: the gradient norm and the loss, read together.
    const torch::Tensor host =
        torch::stack({grad_norm_tensor(opt_.groups()).to(avg.loss_sum.device()), avg.loss_sum}).to(torch::kCPU);
    grad_norm = host[0].item<double>();
    avg.loss = host[1].item<double>();
  }
  clip_grads_to(opt_.groups(), cfg_.optim.grad_clip, grad_norm);
  const double lr = lr_at(cfg_.schedule, cfg_.optim.lr, cfg_.train.max_steps, this_step);
  if (!std::isfinite(grad_norm) || !std::isfinite(avg.loss)) {
    ++nonfinite_count_;
    opt_.zero_grad();
    session_.metrics().write({{"kind", "nonfinite"}, {"step", this_step}, {"loss", avg.mean_loss()},
                              {"grad_norm", grad_norm}, {"count", nonfinite_count_}});
    if (cfg_.train.on_nonfinite == OnNonfinite::stop) {
      const std::string& last = session_.last_checkpoint();
      spdlog::error("step {}: non-finite loss ({}) or gradient norm ({}); stopping. The last good checkpoint "
                    "is {}", this_step, avg.mean_loss(), grad_norm,
                    last.empty() ? "none (no checkpoint was written yet)" : last);
      return false;
    }
    spdlog::warn("step {}: non-finite loss or gradient; step skipped ({} so far)", this_step, nonfinite_count_);
  } else {
    opt_.step(lr);
    opt_.zero_grad();
  }
  window_optim_s_ += seconds_since(optim_t0);
  step_ = this_step;
  tokens_seen_ += step_tokens;
  window_tokens_ += step_tokens;
  if (step_ % cfg_.train.log_every == 0 || step_ == cfg_.train.max_steps || step_ == first_step_ + 1)
    log_step(lr, grad_norm, avg);
  else
    show_progress(avg.mean_loss());
  return true;
}

void Trainer::log_step(double lr, double grad_norm, const Averager& avg) {
  const double dt = seconds_since(window_start_);
  const double tps = dt > 0 ? window_tokens_ / dt : 0.0;
  const double elapsed = seconds_since(start_);
  const double eta =
      elapsed / static_cast<double>(step_ - first_step_) * static_cast<double>(cfg_.train.max_steps - step_);
  const double peak = cfg_.train.peak_flops * comm_->world_size();  // tokens/s is every rank's
  const double mfu = peak > 0 ? tps * training_flops_per_token(cfg_.model, cfg_.data.seq_len) / peak : 0.0;
  nlohmann::json rec{{"kind", "train"}, {"step", step_}, {"loss", avg.mean_loss()},
                     {"ppl", std::exp(avg.mean_loss())}, {"lr", lr}, {"grad_norm", grad_norm},
                     {"tokens_per_s", tps}, {"tokens_seen", tokens_seen_}, {"elapsed_s", elapsed},
                     {"eta_s", eta}, {"window_s", dt}, {"data_s", window_data_s_},
                     {"model_s", window_model_s_}, {"optim_s", window_optim_s_}};
  if (peak > 0) rec["mfu"] = mfu;
  if (grad_sync_) {
    rec["comm_s"] = window_comm_s_;
    rec["buckets_started_in_backward"] = static_cast<int64_t>(grad_sync_->started_during_backward());
    rec["buckets"] = static_cast<int64_t>(grad_sync_->buckets());
  }
  std::string extra;
  for (const auto& [k, v] : avg.sums) {
    rec[k] = v / avg.weight;
    extra += fmt::format(" {} {:.4f}", k, v / avg.weight);
  }
  session_.metrics().write(rec);
  if (::isatty(2)) std::fprintf(stderr, "\r\033[K");
  spdlog::info("step {}/{} loss {:.4f} ppl {:.2f} lr {:.3g} gnorm {:.3f} {:.0f} tok/s{}{} elapsed {} eta {}", step_,
               cfg_.train.max_steps, avg.mean_loss(), std::exp(avg.mean_loss()), lr, grad_norm, tps,
               peak > 0 ? fmt::format(" mfu {:.1f}%", 100 * mfu) : "", extra, format_duration(elapsed),
               format_duration(eta));
  window_start_ = Clock::now();
  window_tokens_ = 0;
  window_data_s_ = window_model_s_ = window_optim_s_ = window_comm_s_ = 0;
}

void Trainer::show_progress(double loss) const {
  if (!::isatty(2)) return;
  const int width = 30;
  const int filled = static_cast<int>(width * step_ / cfg_.train.max_steps);
  std::fprintf(stderr, "\r[%s%s] step %lld/%lld loss %.4f", std::string(filled, '=').c_str(),
               std::string(width - filled, ' ').c_str(), static_cast<long long>(step_),
               static_cast<long long>(cfg_.train.max_steps), loss);
  std::fflush(stderr);
}

int Trainer::run() {
  step_ = session_.resume();
  if (!session_.resuming()) init_weights();
  if (comm_->distributed()) {
    if (session_.resuming()) check_replicas_equal(*comm_, *model_, "after resuming from " + session_.last_checkpoint());
    broadcast_from_rank0(*comm_, *model_);
  }
  if (session_.already_finished(step_)) return 0;
  if (session_.interrupted_before_start()) return kExitInterrupted;
  first_step_ = step_;
  start_ = window_start_ = Clock::now();
  model_->train();
  while (step_ < cfg_.train.max_steps) {
    if (!train_step()) return kExitNonFinite;
    if (cfg_.train.eval_every > 0 && step_ % cfg_.train.eval_every == 0 && step_ != cfg_.train.max_steps) evaluate();
    switch (session_.end_step(step_, first_step_)) {
      case StepEnd::interrupted: return kExitInterrupted;
      case StepEnd::stopped: return 0;
      case StepEnd::next: break;
    }
  }
  evaluate();
  session_.finish(step_, fmt::format("{} steps, {:.0f} tokens in {}", step_, tokens_seen_,
                                     format_duration(seconds_since(start_))));
  return 0;
}

}  // namespace

int run_trainer(const Config& cfg, const StageSpec& spec) { return Trainer(cfg, spec).run(); }

double counted_targets(const Batch& b) {
  // As masked_lm_loss counts them (column 0 is never a target).
  return static_cast<double>(static_cast<int64_t>(b.loss_mask.slice(1, 1).sum().item<double>()));
}

double batch_rows(const Batch& b) { return static_cast<double>(b.size()); }

}  // namespace infini
