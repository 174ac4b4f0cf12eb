// `infini bench model`: times the decoder (forward+backward and streaming) on random tokens for a
// config's model section. `infini bench train`: a short real training run of a config, set against
// the bare model step of the same shape (the trainer's overhead) and the time to write a checkpoint.
// FLOPs per token follow core/flops.h (matmul weights, causal local attention, memory).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "core/compat.h"
#include "core/decode_step.h"
#include "core/decoder.h"
#include "core/error.h"
#include <filesystem>
#include <unistd.h>

#include <fmt/format.h>

#include "core/flops.h"
#include "core/local_attention.h"
#include "train/run/adamw.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/cli/commands.h"
#include "train/config/config.h"
#include "train/run/device.h"
#include "train/stages/lm_head_loss.h"
#include "train/run/metrics_log.h"
#include "train/run/runtime.h"
#include "train/stages/stages.h"
#include "train/run/stopwatch.h"

namespace infini {
namespace {

struct BenchArgs {
  std::string config;
  std::string precision;  // "" = the config's run.precision
  std::string device = "cpu";  // bench train: "" = the config's run.device
  std::string attention;  // bench model: "" = the build's default kernel
  int64_t batch = 4;
  int64_t seq = 1024;
  int64_t steps = 3;
  int64_t decode_tokens = 128;  // bench model: one-token decode calls timed per pass
  bool batch_set = false, seq_set = false;  // bench train: override the config only when given
  std::vector<std::string> overrides;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Seconds of each of `steps` forward+backward passes of `model` on random (B, T) tokens, after one
// warm-up step, on the device of the model's weights (the tokens are drawn on the host, so every
// device sees the same ones). Each timed step starts and ends with synchronize(device).
std::vector<double> time_model_steps(Decoder& model, int64_t batch, int64_t seq, bool bf16, int64_t steps) {
  const int64_t V = model->config().vocab_size;
  const torch::Device device = model->tok_embeddings->weight.device();
  torch::Tensor tokens = torch::randint(0, V, {batch, seq + 1}, torch::kLong).to(device);
  torch::Tensor inputs = tokens.narrow(1, 0, seq), targets = tokens.narrow(1, 1, seq);
  torch::Tensor weights = torch::full({batch * seq}, 1.0 / static_cast<double>(batch * seq), torch::device(device));
  auto step = [&]() {  // the trainer's LM step: trunk, then the fused head + cross-entropy
    torch::Tensor loss;
    {
      compat::AutocastGuard ac(bf16, device.type());
      torch::Tensor h = model->trunk(inputs).reshape({batch * seq, -1});  // (B*T, D)
      loss = fused_lm_head_loss(h, model->lm_head_weight(), targets.reshape({-1}), weights);
    }
    loss.backward();  // outside autocast, as in the trainer: backward ops keep their forward dtypes
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
  };
  step();  // warm-up: allocator, oneDNN / cuBLAS kernel selection
  std::vector<double> seconds;
  for (int64_t i = 0; i < steps; ++i) {
    synchronize(device);
    const auto t0 = std::chrono::steady_clock::now();
    step();
    synchronize(device);
    seconds.push_back(seconds_since(t0));
  }
  return seconds;
}

// The rate of one large square product C = A B in `dtype` on `device`: 2 n^3 FLOPs, best of a few
// tries after a warm-up (the machine's matmul ceiling, against which MFU is stated).
struct MatmulRate {
  double flops = 0.0;  // FLOP/s
  int64_t n = 0;
  int tries = 0;
};
MatmulRate matmul_rate(torch::Device device, torch::ScalarType dtype) {
  MatmulRate r;
  // A CPU without native bf16 multiplies bf16 hundreds of times slower: a smaller product there.
  r.n = device.is_cuda() ? 8192 : (dtype == torch::kBFloat16 && !cpu_has_native_bf16()) ? 256 : 2048;
  r.tries = 3;
  torch::NoGradGuard ng;
  compat::AutocastOff off;  // the product in `dtype` itself
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  const torch::Tensor x = torch::randn({r.n, r.n}, opts), y = torch::randn({r.n, r.n}, opts);
  torch::Tensor out = torch::mm(x, y);  // warm-up
  synchronize(device);
  double best = 1e30;
  for (int i = 0; i < r.tries; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    torch::mm_out(out, x, y);
    synchronize(device);
    best = std::min(best, seconds_since(t0));
  }
  r.flops = 2.0 * static_cast<double>(r.n) * r.n * r.n / best;
  return r;
}

int bench_train(const BenchArgs& a) {
  namespace fs = std::filesystem;
  if (!a.device.empty()) {
    const torch::Device d = parse_device("--device", a.device);
    if (d.is_cuda() && d.index() > 0)
      throw ConfigError("--device: expected cpu or cuda (the trainer's run.device: cuda is cuda:0), found '" +
                        a.device + "'");
  }
  const std::string dir = (fs::temp_directory_path() / fmt::format("infini-bench-train-{}", ::getpid())).string();
  std::vector<std::string> ov = a.overrides;
  for (const std::string& o :
       {fmt::format("run.dir={}", dir), fmt::format("train.max_steps={}", a.steps + 1), std::string("train.log_every=1"),
        std::string("train.eval_every=0"), std::string("train.eval_batches=1"), std::string("checkpoint.every=0"),
        std::string("resume=never"), std::string("train.stop_after=0")})
    ov.push_back(o);
  if (!a.precision.empty()) ov.push_back("run.precision=" + a.precision);
  if (!a.device.empty()) ov.push_back(a.device == "cpu" ? "run.device=cpu" : "run.device=cuda");
  if (a.batch_set) ov.push_back(fmt::format("train.batch_size={}", a.batch));
  if (a.seq_set) ov.push_back(fmt::format("data.seq_len={}", a.seq));
  Config cfg = load_config(a.config, ov);
  if (cfg.stage == Stage::ppo) throw ConfigError("bench train: stage ppo is not a single-loss stage; bench pretrain, sft or reward");
  // The trainer's device, which the bare model step below uses too (checked here, before the run).
  const torch::Device device = parse_device(a.device.empty() ? "run.device" : "--device", choice_name(cfg.run.device));
  const int rc = run_stage(cfg);
  if (rc != 0) return rc;
  // Per-step records (log_every = 1) from step 2 on (step 1 pays for warm-up); medians, so that a
  // stray slow step on a shared machine does not move the figures.
  std::vector<double> step_s, data_s, model_s, optim_s, own_share;
  double tokens = 0;
  for (const auto& r : read_metrics(dir + "/metrics.jsonl"))
    if (r.value("kind", "") == "train" && r["step"].get<int64_t>() >= 2) {
      const double w = r["window_s"].get<double>();
      step_s.push_back(w);
      data_s.push_back(r["data_s"].get<double>());
      model_s.push_back(r["model_s"].get<double>());
      optim_s.push_back(r["optim_s"].get<double>());
      own_share.push_back(w > 0 ? 1.0 - r["model_s"].get<double>() / w : 0.0);
      tokens = r["tokens_per_s"].get<double>() * w;
    }
  if (step_s.empty()) throw Error("bench train: the run logged no timed steps (use --steps >= 1)");
  const double trainer_tps = tokens / median(step_s);

  // The bare model step of the same shape and precision, in the same process.
  torch::manual_seed(cfg.run.seed);
  Decoder model(cfg.model);
  model->to(device);
  const bool bf16 = resolve_bf16(cfg.run.precision, device, cpu_has_native_bf16());
  const int64_t B = cfg.train.batch_size * cfg.train.grad_accum, T = cfg.data.seq_len;
  const double bare_tps = static_cast<double>(B * T) / median(time_model_steps(model, B, T, bf16, a.steps));

  // Writing one checkpoint (weights + AdamW moments, fsync, rename).
  AdamW opt(make_param_groups(*model, 0.1, 1.0), 0.9, 0.95, 1e-8);
  const auto t0 = std::chrono::steady_clock::now();
  commit_checkpoint(dir + "/ckbench", 1, [&](const std::string& d) {
    save_model_and_optimizer(d, model, &opt, {});
  });
  const double ck_s = seconds_since(t0);
  int64_t ck_bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir + "/ckbench/checkpoints"))
    if (e.is_regular_file()) ck_bytes += static_cast<int64_t>(e.file_size());
  fs::remove_all(dir);

  const double flops = training_flops_per_token(cfg.model, T);
  std::printf("bench train: %s, precision %s, batch %lld x seq %lld, %lld timed steps, device %s\n",
              choice_name(cfg.stage), bf16 ? "bf16" : "fp32", static_cast<long long>(B), static_cast<long long>(T),
              static_cast<long long>(a.steps), device_name(device).c_str());
  std::printf("trainer:    %.0f tokens/s, %.1f GFLOP/s%s\n", trainer_tps, trainer_tps * flops / 1e9,
              cfg.train.peak_flops > 0 ? fmt::format(", MFU {:.1f}%", 100 * trainer_tps * flops / cfg.train.peak_flops).c_str() : "");
  const double st = median(step_s);
  std::printf("trainer step: %.3f s = data %.1f%% + forward/backward %.1f%% + clip/AdamW %.1f%% + rest %.1f%% "
              "(medians over steps)\n", st, 100 * median(data_s) / st, 100 * median(model_s) / st,
              100 * median(optim_s) / st,
              100 * std::max(0.0, 1.0 - (median(data_s) + median(model_s) + median(optim_s)) / st));
  std::printf("trainer overhead within its own steps: %.1f%% (time outside forward/backward; median of steps)\n",
              100 * median(own_share));
  std::printf("bare model: %.0f tokens/s (forward+backward only, timed after the run)\n", bare_tps);
  std::printf("trainer vs bare model: %+.1f%% time per token (+ = trainer slower; includes the machine's drift "
              "between the two timings)\n", 100.0 * (bare_tps / trainer_tps - 1.0));
  std::printf("checkpoint: %.2f s for %.1f MB (model + optimizer, fsync + rename)\n", ck_s, ck_bytes / 1e6);
  return 0;
}

int bench_model(const BenchArgs& a) {
  const torch::Device device = parse_device("--device", a.device);
  if (!a.attention.empty() && a.attention != "matmul" && a.attention != "sdpa")
    throw ConfigError("--attention: expected matmul or sdpa, found '" + a.attention + "'");
  Config cfg = load_config(a.config, a.overrides);
  Precision chosen = cfg.run.precision;
  if (!a.precision.empty() && !parse_choice(a.precision, &chosen))
    throw ConfigError("--precision: expected fp32, bf16 or auto, found '" + a.precision + "'");
  const bool bf16 = resolve_bf16(chosen, device, cpu_has_native_bf16());
  const std::string precision = bf16 ? "bf16" : "fp32";
  if (a.batch < 1 || a.seq < 2 || a.steps < 1 || a.decode_tokens < 1)
    throw ConfigError("--batch, --steps and --decode-tokens must be >= 1 and --seq >= 2");
  const int threads = resolve_threads(cfg.run.threads, "run.threads");
  compat::set_threads(threads);
  const ModelConfig& mc = cfg.model;
  if (!a.attention.empty())  // throws (one line) for sdpa on a LibTorch without it
    set_attention_kernel(a.attention == "sdpa" ? AttentionKernel::sdpa : AttentionKernel::matmul);

  torch::manual_seed(cfg.run.seed);
  Decoder model(mc);
  model->to(device);
  int64_t p_all = 0;
  for (const auto& p : model->parameters()) p_all += p.numel();
  const double flops_per_token = training_flops_per_token(mc, a.seq);  // convention: core/flops.h

  const double train_s = median(time_model_steps(model, a.batch, a.seq, bf16, a.steps));
  torch::Tensor inputs = torch::randint(0, mc.vocab_size, {a.batch, a.seq}, torch::kLong).to(device);
  const double train_tps = static_cast<double>(a.batch * a.seq) / train_s;

  // Streaming, inference: the whole sequence in segment-sized chunks, then single tokens
  // across a segment boundary (the generation pattern). Each timed region starts and ends with
  // synchronize(device), so on a GPU the times are the kernels' and not their launches'.
  torch::NoGradGuard ng;
  compat::AutocastGuard ac(bf16, device.type());
  StreamState st = model->new_state(a.batch);
  synchronize(device);
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t at = 0; at < a.seq; at += mc.segment_len)
    model->forward_stream(st, inputs.narrow(1, at, std::min(mc.segment_len, a.seq - at)));
  synchronize(device);
  const double chunk_tps = static_cast<double>(a.batch * a.seq) / seconds_since(t0);
  // Decoding: `decode_tokens` single tokens per row from half a segment before a boundary (so the
  // memory write is among them), after a lead read in one call; best of three passes, each from a
  // copy of the state after the lead. Then the same through the general streaming path.
  const int64_t single = a.decode_tokens;
  const int64_t lead = std::max<int64_t>(0, mc.segment_len - std::min(single, mc.segment_len) / 2);
  torch::Tensor dtok = torch::randint(0, mc.vocab_size, {a.batch, lead + single}, torch::kLong).to(device);
  auto decode_tps = [&]() {
    StreamState start = model->new_state(a.batch);
    if (lead > 0) model->forward_stream(start, dtok.narrow(1, 0, lead));
    double best = 1e30;
    for (int pass = 0; pass < 3; ++pass) {
      StreamState one = start.clone();
      synchronize(device);
      const auto t = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < single; ++i) model->forward_stream(one, dtok.narrow(1, lead + i, 1));
      synchronize(device);
      best = std::min(best, seconds_since(t));
    }
    return static_cast<double>(a.batch * single) / best;
  };
  const double token_tps = decode_tps();
  double general_tps = 0.0;
  if (decode_step_applies(*model, dtok.narrow(1, 0, 1))) {
    set_decode_step_enabled(false);
    general_tps = decode_tps();
    set_decode_step_enabled(true);
  }
  const MatmulRate fp32_rate = matmul_rate(device, torch::kFloat);
  const MatmulRate bf16_rate = matmul_rate(device, torch::kBFloat16);
  const double achieved = train_tps * flops_per_token;

  std::printf("model: %lld params, d_model %lld, %lld layers, %lld heads, segment %lld, memory %s (%s, %s)\n",
              static_cast<long long>(p_all), static_cast<long long>(mc.d_model),
              static_cast<long long>(mc.n_layers), static_cast<long long>(mc.n_heads),
              static_cast<long long>(mc.segment_len), mc.memory.enabled ? "on" : "off",
              to_string(mc.memory.update), to_string(mc.memory.gradient));
  std::printf("setup: precision %s, batch %lld, seq %lld, threads %d, %lld timed steps, device %s, attention %s\n",
              precision.c_str(), static_cast<long long>(a.batch), static_cast<long long>(a.seq), threads,
              static_cast<long long>(a.steps), device_name(device).c_str(),
              attention_kernel_name(attention_kernel()));
  std::printf("train fwd+bwd: %.0f tokens/s, %.1f GFLOP/s (%.3g FLOP/token)\n", train_tps,
              train_tps * flops_per_token / 1e9, flops_per_token);
  std::printf("stream chunks: %.0f tokens/s (segment-sized chunks)\n", chunk_tps);
  std::printf("stream tokens: %.0f tokens/s (one token per call, batch %lld, %lld calls, best of 3)\n", token_tps,
              static_cast<long long>(a.batch), static_cast<long long>(single));
  if (general_tps > 0)
    std::printf("stream tokens, general path: %.0f tokens/s (the fast one-token step is %.2fx)\n", general_tps,
                token_tps / general_tps);
  std::printf("matmul rate: fp32 %.1f GFLOP/s (%lld^3), bf16 %.1f GFLOP/s (%lld^3); square products, best of %d, "
              "threads %d\n", fp32_rate.flops / 1e9, static_cast<long long>(fp32_rate.n), bf16_rate.flops / 1e9,
              static_cast<long long>(bf16_rate.n), fp32_rate.tries, threads);
  const MatmulRate& own_rate = bf16 ? bf16_rate : fp32_rate;
  // Against bf16's rate too where bf16 is the hardware's fast path; on a CPU that emulates it, that
  // rate is far below fp32's and a share of it would only mislead.
  const bool bf16_native = device.is_cuda() || cpu_has_native_bf16();
  const std::string vs_bf16 =
      bf16 || !bf16_native ? "" : fmt::format(" ({:.1f}% of bf16's)", 100 * achieved / bf16_rate.flops);
  std::printf("MFU: %.1f%% of the %s matmul rate%s for training's %.1f GFLOP/s%s\n", 100 * achieved / own_rate.flops,
              precision.c_str(), vs_bf16.c_str(), achieved / 1e9,
              bf16_native ? "" : " (bf16 is emulated on this CPU)");
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "measure speed (model, train)");
  bench->require_subcommand(1);
  auto a = std::make_shared<BenchArgs>();
  CLI::App* m = bench->add_subcommand("model", "time forward+backward and streaming of a config's model");
  m->add_option("--config", a->config, "YAML config (its model: and run: sections are used)")->required();
  m->add_option("--precision", a->precision, "fp32 | bf16 | auto (default: the config's run.precision)");
  m->add_option("--batch", a->batch, "sequences per step (default 4)");
  m->add_option("--seq", a->seq, "tokens per sequence (default 1024)");
  m->add_option("--steps", a->steps, "timed training steps after one warm-up (default 3)");
  m->add_option("--decode-tokens", a->decode_tokens, "single-token decode calls per timed pass (default 128)");
  m->add_option("--device", a->device, "cpu | cuda | cuda:N: where the model runs (default cpu)");
  m->add_option("--attention", a->attention,
                std::string("local attention kernel: matmul | sdpa (default: this build's, ") +
                    attention_kernel_name(attention_kernel()) + ")");
  m->add_option("overrides", a->overrides, "key.path=value config overrides");
  m->callback([a]() { set_command([a]() { return bench_model(*a); }); });

  auto t = std::make_shared<BenchArgs>();
  t->steps = 5;
  t->device = "";
  CLI::App* tr = bench->add_subcommand("train", "a short training run of a config vs the bare model step, and checkpoint time");
  tr->add_option("--config", t->config, "a stage config (pretrain, sft or reward) whose data exists")->required();
  tr->add_option("--precision", t->precision, "fp32 | bf16 | auto (default: the config's run.precision)");
  tr->add_option("--batch", t->batch, "sequences per step (default: the config's)")->each([t](const std::string&) { t->batch_set = true; });
  tr->add_option("--seq", t->seq, "tokens per sequence (default: the config's data.seq_len)")->each([t](const std::string&) { t->seq_set = true; });
  tr->add_option("--steps", t->steps, "timed steps after one warm-up step (default 5)");
  tr->add_option("--device", t->device,
                 "cpu | cuda: where the run and the bare model step run (sets run.device; default: the "
                 "config's run.device, cpu unless it says otherwise)");
  tr->add_option("overrides", t->overrides, "key.path=value config overrides");
  tr->callback([t]() { set_command([t]() { return bench_train(*t); }); });
}

}  // namespace infini
