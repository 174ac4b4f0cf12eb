// `infini bench model`: times the decoder (forward+backward and streaming) on random tokens for a
// config's model section. Not a training run: no data, no optimizer, no checkpoint.
//
// FLOPs are counted per token, for one forward+backward (backward = 2x forward):
//   6 * P_matmul                         P_matmul = all weights used in matmuls (q/k/v/o, FFN,
//                                        output head); the embedding lookup is free
// + 12 * n_layers * H * Dh * N           local attention: QK^T and AV over a full segment of N
//                                        keys (causal masking not discounted, as in PaLM's MFU)
// + 12 * n_layers * H * Dh * Dh          memory read sigma(q) M and update sigma(k)^T v (if enabled)
#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "core/compat.h"
#include "core/decoder.h"
#include "core/error.h"
#include "train/commands.h"
#include "train/config.h"

namespace infini {
namespace {

struct BenchArgs {
  std::string config;
  std::string precision;  // "" = the config's run.precision
  int64_t batch = 4;
  int64_t seq = 1024;
  int64_t steps = 3;
  std::vector<std::string> overrides;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int bench_model(const BenchArgs& a) {
  Config cfg = load_config(a.config, a.overrides);
  const std::string precision = a.precision.empty() ? cfg.run.precision : a.precision;
  if (precision != "fp32" && precision != "bf16")
    throw ConfigError("--precision: expected fp32 or bf16, found '" + precision + "'");
  if (a.batch < 1 || a.seq < 2 || a.steps < 1)
    throw ConfigError("--batch and --steps must be >= 1 and --seq >= 2");
  const int threads = cfg.run.threads > 0 ? static_cast<int>(cfg.run.threads)
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  compat::set_threads(threads);
  const bool bf16 = precision == "bf16";
  const ModelConfig& mc = cfg.model;

  torch::manual_seed(cfg.run.seed);
  Decoder model(mc);
  int64_t p_all = 0, p_embed = model->tok_embeddings->weight.numel();
  for (const auto& p : model->parameters()) p_all += p.numel();
  // With tied embeddings the table is also the output matmul, so it counts once.
  const int64_t p_matmul = p_all - (mc.tie_embeddings ? 0 : p_embed);
  const double H = static_cast<double>(mc.n_heads), Dh = static_cast<double>(mc.head_dim());
  const double L = static_cast<double>(mc.n_layers), N = static_cast<double>(mc.segment_len);
  const double flops_per_token = 6.0 * static_cast<double>(p_matmul) + 12.0 * L * H * Dh * N +
                                 (mc.memory.enabled ? 12.0 * L * H * Dh * Dh : 0.0);

  torch::Tensor tokens = torch::randint(0, mc.vocab_size, {a.batch, a.seq + 1}, torch::kLong);
  torch::Tensor inputs = tokens.narrow(1, 0, a.seq), targets = tokens.narrow(1, 1, a.seq);
  auto step = [&]() {
    torch::Tensor logits;
    {
      compat::AutocastGuard ac(bf16, torch::kCPU);
      logits = model->forward(inputs);  // (B, T, V) fp32
    }
    torch::Tensor loss = torch::cross_entropy_loss(logits.reshape({-1, mc.vocab_size}), targets.reshape({-1}));
    loss.backward();
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
  };
  step();  // warm-up: allocator, oneDNN kernel selection
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < a.steps; ++i) step();
  const double train_s = seconds_since(t0) / static_cast<double>(a.steps);
  const double train_tps = static_cast<double>(a.batch * a.seq) / train_s;

  // Streaming, inference: the whole sequence in segment-sized chunks, then single tokens
  // across a segment boundary (the generation pattern).
  torch::NoGradGuard ng;
  compat::AutocastGuard ac(bf16, torch::kCPU);
  StreamState st = model->new_state(a.batch);
  t0 = std::chrono::steady_clock::now();
  for (int64_t at = 0; at < a.seq; at += mc.segment_len)
    model->forward_stream(st, inputs.narrow(1, at, std::min(mc.segment_len, a.seq - at)));
  const double chunk_tps = static_cast<double>(a.batch * a.seq) / seconds_since(t0);
  StreamState one = model->new_state(a.batch);
  const int64_t single = std::min<int64_t>(64, a.seq);
  const int64_t lead = std::max<int64_t>(0, std::min(a.seq - single, mc.segment_len - single / 2));
  if (lead > 0) model->forward_stream(one, inputs.narrow(1, 0, lead));
  t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < single; ++i) model->forward_stream(one, inputs.narrow(1, lead + i, 1));
  const double token_tps = static_cast<double>(a.batch * single) / seconds_since(t0);

  std::printf("model: %lld params, d_model %lld, %lld layers, %lld heads, segment %lld, memory %s (%s, %s)\n",
              static_cast<long long>(p_all), static_cast<long long>(mc.d_model),
              static_cast<long long>(mc.n_layers), static_cast<long long>(mc.n_heads),
              static_cast<long long>(mc.segment_len), mc.memory.enabled ? "on" : "off",
              to_string(mc.memory.update), to_string(mc.memory.gradient));
  std::printf("setup: precision %s, batch %lld, seq %lld, threads %d, %lld timed steps\n", precision.c_str(),
              static_cast<long long>(a.batch), static_cast<long long>(a.seq), threads,
              static_cast<long long>(a.steps));
  std::printf("train fwd+bwd: %.0f tokens/s, %.1f GFLOP/s (%.3g FLOP/token)\n", train_tps,
              train_tps * flops_per_token / 1e9, flops_per_token);
  std::printf("stream chunks: %.0f tokens/s (segment-sized chunks)\n", chunk_tps);
  std::printf("stream tokens: %.0f tokens/s (one token per call, batch %lld)\n", token_tps,
              static_cast<long long>(a.batch));
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "measure speed (model)");
  bench->require_subcommand(1);
  auto a = std::make_shared<BenchArgs>();
  CLI::App* m = bench->add_subcommand("model", "time forward+backward and streaming of a config's model");
  m->add_option("--config", a->config, "YAML config (its model: and run: sections are used)")->required();
  m->add_option("--precision", a->precision, "fp32 | bf16 (default: the config's run.precision)");
  m->add_option("--batch", a->batch, "sequences per step (default 4)");
  m->add_option("--seq", a->seq, "tokens per sequence (default 1024)");
  m->add_option("--steps", a->steps, "timed training steps after one warm-up (default 3)");
  m->add_option("overrides", a->overrides, "key.path=value config overrides");
  m->callback([a]() { set_command([a]() { return bench_model(*a); }); });
}

}  // namespace infini
