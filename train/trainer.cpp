// The shared training loop (see trainer.h): one place where a step happens.
// Order per step: micro-batches -> backward -> non-finite check -> clip -> AdamW -> log/eval/checkpoint.
#include "train/trainer.h"

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
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/checkpoint_dir.h"
#include "train/lm_head_loss.h"
#include "train/metrics_log.h"
#include "train/runtime.h"
#include "train/schedule.h"
#include "train/signals.h"
#include "train/stopwatch.h"

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
  mv(o.tokens); mv(o.loss_mask); mv(o.lengths);
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
  double mean_loss() const { return weight > 0 ? loss / weight : 0.0; }
};

}  // namespace

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
  const int64_t P = loss_free_prefix(model->config(), b.loss_mask);
  const bool writes = prefix_writes && P > 0 && torch::GradMode::is_enabled();
  torch::Tensor hidden;
  std::vector<LayerStreamState> start;  // with writes: the memory the rest starts from, as leaves
  if (P == 0) {
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

int run_trainer(const Config& cfg, const StageSpec& spec) {
  const std::string run_dir = cfg.run.dir;
  fs::create_directories(run_dir);
  setup_logging(cfg.run.log_level, (fs::path(run_dir) / "train.log").string());
  const Runtime rt = setup_runtime(cfg.run);
  install_stop_handlers();

  // Resume or start.
  std::string resume_dir = cfg.resume == "auto" ? latest_checkpoint(run_dir) : "";
  const std::string config_path = (fs::path(run_dir) / "config.yaml").string();
  write_file_atomic(config_path, config_to_yaml(cfg));
  spdlog::info("stage {} -> {} ({} threads, {}, {})", spec.name, run_dir, rt.threads,
               rt.device.is_cpu() ? "cpu" : "cuda", rt.bf16 ? "bf16 autocast" : "fp32");
  spdlog::debug("resolved config:\n{}", config_to_yaml(cfg));

  std::optional<Tokenizer> tok;
  if (!cfg.tokenizer.model.empty()) {
    tok = Tokenizer::load(cfg.tokenizer.model);
    if (tok->vocab_size() > cfg.model.vocab_size)
      throw ConfigError(fmt::format("model.vocab_size ({}) is smaller than the tokenizer's vocabulary ({} in {})",
                                    cfg.model.vocab_size, tok->vocab_size(), cfg.tokenizer.model));
  } else if (spec.needs_tokenizer) {
    throw ConfigError(fmt::format("tokenizer.model: stage {} renders records and needs a tokenizer, found none",
                                  spec.name));
  }

  Decoder model(cfg.model, spec.head);
  model->to(rt.device);
  if (cfg.optim.freeze_layers > 0) {  // frozen tensors get no gradient and no optimizer state
    for (auto& item : model->named_parameters(true)) {
      const int64_t block = block_index(item.key());
      if (item.key().rfind("tok_embeddings.", 0) == 0 || (block >= 0 && block < cfg.optim.freeze_layers))
        item.value().set_requires_grad(false);
    }
    spdlog::info("optim.freeze_layers: the embedding and blocks 0-{} are frozen", cfg.optim.freeze_layers - 1);
  }
  AdamW opt(make_param_groups(*model, cfg.optim.weight_decay, cfg.optim.gate_lr_mult), cfg.optim.betas[0],
            cfg.optim.betas[1], cfg.optim.eps);

  Loader train_loader(cfg.data, Split::train, tok ? &*tok : nullptr, cfg.train.batch_size,
                      static_cast<uint64_t>(cfg.run.seed));
  std::optional<Loader> val_loader;
  if (Loader::has_split(cfg.data, Split::val))
    val_loader.emplace(cfg.data, Split::val, tok ? &*tok : nullptr, cfg.train.batch_size,
                       static_cast<uint64_t>(cfg.run.seed));

  int64_t step = 0;
  double tokens_seen = 0;
  if (!resume_dir.empty()) {
    load_model_and_optimizer(resume_dir, model, &opt);
    nlohmann::json st = load_trainer_state(resume_dir);
    step = st.at("step").get<int64_t>();
    tokens_seen = st.value("tokens_seen", 0.0);
    train_loader.load_state(st.at("loader"));
    restore_rng_states(st, resume_dir, rt.device);
    spdlog::info("resumed from {} (step {})", resume_dir, step);
  } else if (!cfg.init_from.empty()) {
    const int64_t added =
        init_weights_from(cfg.init_from, model, spec.init_from_ignore, spec.init_from_fresh, cfg.init_extra_layers);
    spdlog::info("initialised weights from {}", cfg.init_from);
    if (added) spdlog::info("init_extra_layers: the last {} of {} blocks start fresh", added, cfg.model.n_layers);
  }

  std::map<std::string, std::string> meta{{"stage", spec.name}};
  if (tok) {
    meta["tokenizer_path"] = fs::absolute(tok->path()).string();
    meta["tokenizer_hash"] = tok->content_hash();
  }

  MetricsLog metrics((fs::path(run_dir) / "metrics.jsonl").string(), step);
  std::string last_checkpoint = resume_dir;

  auto save = [&](int64_t at_step) {
    const auto t0 = Clock::now();
    last_checkpoint = commit_checkpoint(
        run_dir, at_step,
        [&](const std::string& dir) {
          save_model_and_optimizer(dir, model, &opt, meta);
          nlohmann::json state{{"step", at_step},
                               {"stage", spec.name},
                               {"tokens_seen", tokens_seen},
                               {"loader", train_loader.state()},
                               {"schedule", {{"lr", lr_at(cfg.schedule, cfg.optim.lr, cfg.train.max_steps, at_step)}}}};
          state.update(rng_states(rt.device));
          save_trainer_state(dir, state);
        },
        static_cast<int>(cfg.checkpoint.keep_last));
    spdlog::info("checkpoint {} ({:.2f} s)", last_checkpoint, seconds_since(t0));
  };

  auto evaluate = [&](int64_t at_step) {
    if (!val_loader) return;
    torch::NoGradGuard ng;
    model->eval();
    Averager avg;
    for (const Batch& raw : val_loader->all_batches(cfg.train.eval_batches > 0 ? cfg.train.eval_batches : -1)) {
      const Batch b = to_device(raw, rt.device);
      LossOutput out;
      {
        compat::AutocastGuard ac(rt.bf16, rt.device.type());
        out = spec.loss(model, b);
      }
      avg.add(out);
    }
    avg.read();
    model->train();
    nlohmann::json rec{{"kind", "eval"}, {"step", at_step}, {"val_loss", avg.mean_loss()},
                       {"val_ppl", std::exp(avg.mean_loss())}};
    std::string extra;
    for (const auto& [k, v] : avg.sums) {
      rec["val_" + k] = v / avg.weight;
      extra += fmt::format(" val_{} {:.4f}", k, v / avg.weight);
    }
    metrics.write(rec);
    spdlog::info("eval step {} val_loss {:.4f} val_ppl {:.2f}{}", at_step, avg.mean_loss(),
                 std::exp(avg.mean_loss()), extra);
  };

  if (step >= cfg.train.max_steps) {
    spdlog::info("already finished: {} is at step {} of {}", run_dir, step, cfg.train.max_steps);
    return 0;
  }

  const double flops_per_token = training_flops_per_token(cfg.model, cfg.data.seq_len);
  const bool tty = ::isatty(2);
  const auto start = Clock::now();
  const int64_t first_step = step;
  auto window_start = Clock::now();
  double window_tokens = 0;
  // Where the window's time went: waiting for batches, forward+backward (the model step proper),
  // clipping + AdamW + zeroing gradients. The rest of window_s is logging, evaluation and checkpoints.
  // Exact on CPU; on CUDA kernels run ahead of the host, so part of the backward lands in optim_s.
  double window_data_s = 0, window_model_s = 0, window_optim_s = 0;
  int64_t nonfinite_count = 0;
  model->train();

  while (step < cfg.train.max_steps) {
    const int64_t this_step = step + 1;
    Averager avg;
    double step_tokens = 0;
    bool finite = true;
    for (int64_t micro = 0; micro < cfg.train.grad_accum; ++micro) {
      auto t0 = Clock::now();
      const Batch b = to_device(train_loader.next(), rt.device);
      window_data_s += seconds_since(t0);
      t0 = Clock::now();
      LossOutput out;
      {
        compat::AutocastGuard ac(rt.bf16, rt.device.type());
        out = spec.loss(model, b);
      }
      (out.loss / static_cast<double>(cfg.train.grad_accum)).backward();
      if (out.backward_more) {
        compat::AutocastGuard ac(rt.bf16, rt.device.type());
        out.backward_more();
      }
      window_model_s += seconds_since(t0);
      avg.add(out);
      step_tokens += static_cast<double>(b.num_tokens());
    }
    const auto optim_t0 = Clock::now();
    // The step's one wait for the device: the gradient norm and the loss, read together.
    const torch::Tensor host = torch::stack({grad_norm_tensor(opt.groups()).to(avg.loss_sum.device()),
                                             avg.loss_sum}).to(torch::kCPU);
    const double grad_norm = host[0].item<double>();
    avg.loss = host[1].item<double>();
    clip_grads_to(opt.groups(), cfg.optim.grad_clip, grad_norm);
    if (!std::isfinite(grad_norm) || !std::isfinite(avg.loss)) finite = false;
    const double lr = lr_at(cfg.schedule, cfg.optim.lr, cfg.train.max_steps, this_step);
    if (!finite) {
      ++nonfinite_count;
      opt.zero_grad();
      metrics.write({{"kind", "nonfinite"}, {"step", this_step}, {"loss", avg.mean_loss()},
                     {"grad_norm", grad_norm}, {"count", nonfinite_count}});
      if (cfg.train.on_nonfinite == "stop") {
        spdlog::error("step {}: non-finite loss ({}) or gradient norm ({}); stopping. The last good checkpoint "
                      "is {}", this_step, avg.mean_loss(), grad_norm,
                      last_checkpoint.empty() ? "none (no checkpoint was written yet)" : last_checkpoint);
        return kExitNonFinite;
      }
      spdlog::warn("step {}: non-finite loss or gradient; step skipped ({} so far)", this_step, nonfinite_count);
    } else {
      opt.step(lr);
      opt.zero_grad();
    }
    window_optim_s += seconds_since(optim_t0);
    step = this_step;
    tokens_seen += step_tokens;
    window_tokens += step_tokens;

    if (step % cfg.train.log_every == 0 || step == cfg.train.max_steps || step == first_step + 1) {
      const double dt = seconds_since(window_start);
      const double tps = dt > 0 ? window_tokens / dt : 0.0;
      const double elapsed = seconds_since(start);
      const double eta = elapsed / static_cast<double>(step - first_step) * static_cast<double>(cfg.train.max_steps - step);
      const double mfu = cfg.train.peak_flops > 0 ? tps * flops_per_token / cfg.train.peak_flops : 0.0;
      nlohmann::json rec{{"kind", "train"}, {"step", step}, {"loss", avg.mean_loss()},
                         {"ppl", std::exp(avg.mean_loss())}, {"lr", lr}, {"grad_norm", grad_norm},
                         {"tokens_per_s", tps}, {"tokens_seen", tokens_seen}, {"elapsed_s", elapsed},
                         {"eta_s", eta}, {"window_s", dt}, {"data_s", window_data_s},
                         {"model_s", window_model_s}, {"optim_s", window_optim_s}};
      if (cfg.train.peak_flops > 0) rec["mfu"] = mfu;
      std::string extra;
      for (const auto& [k, v] : avg.sums) {
        rec[k] = v / avg.weight;
        extra += fmt::format(" {} {:.4f}", k, v / avg.weight);
      }
      metrics.write(rec);
      if (tty) std::fprintf(stderr, "\r\033[K");
      spdlog::info("step {}/{} loss {:.4f} ppl {:.2f} lr {:.3g} gnorm {:.3f} {:.0f} tok/s{}{} elapsed {} eta {}",
                   step, cfg.train.max_steps, avg.mean_loss(), std::exp(avg.mean_loss()), lr, grad_norm, tps,
                   cfg.train.peak_flops > 0 ? fmt::format(" mfu {:.1f}%", 100 * mfu) : "", extra,
                   format_duration(elapsed), format_duration(eta));
      window_start = Clock::now();
      window_tokens = 0;
      window_data_s = window_model_s = window_optim_s = 0;
    } else if (tty) {
      const int width = 30;
      const int filled = static_cast<int>(width * step / cfg.train.max_steps);
      std::fprintf(stderr, "\r[%s%s] step %lld/%lld loss %.4f", std::string(filled, '=').c_str(),
                   std::string(width - filled, ' ').c_str(), static_cast<long long>(step),
                   static_cast<long long>(cfg.train.max_steps), avg.mean_loss());
      std::fflush(stderr);
    }

    if (cfg.train.eval_every > 0 && step % cfg.train.eval_every == 0 && step != cfg.train.max_steps) evaluate(step);
    const bool periodic = cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0;
    if (stop_requested()) {
      save(step);
      spdlog::warn("interrupted by signal {} at step {}; checkpoint {} written. Resume with: infini train {} "
                   "(resume: auto continues from {}/checkpoints/latest)",
                   stop_signal(), step, last_checkpoint, config_path, run_dir);
      return kExitInterrupted;
    }
    if (cfg.train.stop_after > 0 && step - first_step >= cfg.train.stop_after && step != cfg.train.max_steps) {
      save(step);
      spdlog::info("stopping after {} steps as train.stop_after asks; resume continues at step {}",
                   cfg.train.stop_after, step + 1);
      return 0;
    }
    if (periodic && step != cfg.train.max_steps) save(step);
  }
  evaluate(step);
  save(step);
  spdlog::info("done: {} steps, {:.0f} tokens in {}; final checkpoint {}", step, tokens_seen,
               format_duration(seconds_since(start)), last_checkpoint);
  return 0;
}

}  // namespace infini
