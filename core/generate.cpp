// Sampling of the next token and the streaming generation loop (prompt once, then one token per step).
// Not tokenization or printing: the CLI (train/cli/cmd_generate.cpp) turns ids into output.
#include "core/generate.h"

#include <cmath>
#include <limits>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "core/decode.h"
#include "core/error.h"

namespace infini {

at::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

namespace {

void check_options(const SamplingOptions& o) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    throw Error(fmt::format("temperature must be a finite number >= 0, found {}", o.temperature));
  if (o.top_k < 0) throw Error(fmt::format("top-k must be >= 0 (0 = off), found {}", o.top_k));
  if (!(o.top_p > 0 && o.top_p <= 1)) throw Error(fmt::format("top-p must be in (0, 1], found {}", o.top_p));
}

}  // namespace

void check_generate_options(const GenerateOptions& o) {
  check_options(o.sampling);
  if (o.max_new_tokens < 0) throw Error(fmt::format("max-new-tokens must be >= 0, found {}", o.max_new_tokens));
}

torch::Tensor sampling_probs(const torch::Tensor& logits_in, const SamplingOptions& opts) {
  check_options(opts);
  TORCH_CHECK(logits_in.dim() == 2, "sampling expects logits (B, V), got ", logits_in.sizes());
  torch::Tensor logits = logits_in.detach().to(torch::kFloat);  // (B, V)
  const int64_t V = logits.size(1);
  if (opts.temperature == 0) {
    return torch::zeros_like(logits).scatter_(1, logits.argmax(1, /*keepdim=*/true), 1.0);
  }
  logits = logits / opts.temperature;
  if (opts.top_k > 0 && opts.top_k < V) {
    // Exactly k survivors (ties broken by topk's order), the rest get -inf.
    torch::Tensor idx = std::get<1>(logits.topk(opts.top_k, 1));  // (B, k)
    torch::Tensor keep = torch::zeros_like(logits, torch::kBool).scatter_(1, idx, true);
    logits = logits.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
  }
  torch::Tensor probs = torch::softmax(logits, 1);  // (B, V)
  if (opts.top_p < 1) {
    auto [sorted, order] = probs.sort(1, /*descending=*/true);  // (B, V) each
    // A token stays when the mass strictly before it is < top_p: the smallest prefix reaching top_p.
    torch::Tensor before = sorted.cumsum(1) - sorted;
    torch::Tensor keep_sorted = before < opts.top_p;
    torch::Tensor keep = torch::zeros_like(keep_sorted).scatter_(1, order, keep_sorted);
    probs = probs.masked_fill(keep.logical_not(), 0.0);
    probs = probs / probs.sum(1, /*keepdim=*/true);
  }
  return probs;
}

torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& opts, at::Generator& gen) {
  check_options(opts);
  TORCH_CHECK(logits.dim() == 2, "sample_next expects logits (B, V), got ", logits.sizes());
  if (opts.temperature == 0) return logits.argmax(1).to(torch::kLong);  // (B,)
  torch::Tensor probs = sampling_probs(logits, opts).to(torch::kCPU);
  return torch::multinomial(probs, 1, /*replacement=*/false, gen).squeeze(1).to(logits.device());  // (B,)
}

torch::Tensor sample_next_rows(const torch::Tensor& logits, const SamplingOptions& opts,
                               const std::vector<at::Generator*>& gens) {
  check_options(opts);
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == static_cast<int64_t>(gens.size()),
              "sample_next_rows expects logits (B, V) and B generators, got ", logits.sizes(), " and ", gens.size());
  if (opts.temperature == 0) return logits.argmax(1).to(torch::kLong);  // (B,)
  const torch::Tensor probs = sampling_probs(logits, opts).to(torch::kCPU);
  auto next = torch::empty({logits.size(0)}, torch::kLong);
  for (int64_t j = 0; j < logits.size(0); ++j)
    next[j] = torch::multinomial(probs[j], 1, /*replacement=*/false, *gens[static_cast<size_t>(j)]).item<int64_t>();
  return next.to(logits.device());  // (B,)
}

std::vector<int64_t> generate(Decoder& model, const std::vector<int64_t>& prompt, const GenerateOptions& opts,
                              const std::function<void(int64_t)>& on_token) {
  check_options(opts.sampling);
  if (prompt.empty()) throw Error("generate: the prompt is empty; give at least one token (e.g. BOS = 1)");
  if (opts.max_new_tokens < 0) throw Error(fmt::format("max-new-tokens must be >= 0, found {}", opts.max_new_tokens));
  const int64_t V = model->config().vocab_size;
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= V)
      throw Error(fmt::format("prompt token {} (position {}) is outside the vocabulary [0, {})", prompt[i], i, V));
  TORCH_CHECK(model->head_kind() == Head::lm, "generate needs a model with the lm head");

  torch::NoGradGuard no_grad;
  const torch::Device device = model->tok_embeddings->weight.device();
  at::Generator gen = make_generator(opts.seed);
  std::vector<int64_t> out = prompt;
  StreamState state = model->new_state(1);
  // The prompt is read in chunks of whole segments (Decoder::read_prompt: trunk only, the head at
  // its last position), so a prompt of any length goes through memory with bounded activations.
  torch::Tensor x = torch::tensor(prompt, torch::kLong).view({1, -1}).to(device);  // (1, T)
  torch::Tensor logits = model->head(model->read_prompt(state, x)).select(1, 0);    // (1, V)
  decode_loop(
      model, state, logits, opts.max_new_tokens,
      [&](const torch::Tensor& l) { return sample_next(l, opts.sampling, gen); },
      [&](const torch::Tensor& next_t) {
        const int64_t next = next_t.item<int64_t>();
        out.push_back(next);
        if (on_token) on_token(next);
        return next != opts.eos_id;
      });
  return out;
}

}  // namespace infini
