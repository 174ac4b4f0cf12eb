// Decoder construction, initialisation and the two forward paths.
// Bad configs are refused here with the config's own one-line message (infini::ConfigError).
#include "core/decoder.h"

#include <cmath>

#include "core/compressive_memory.h"
#include "core/decode_step.h"
#include "core/error.h"

namespace infini {

DecoderImpl::DecoderImpl(const ModelConfig& cfg, Head head) : cfg_(cfg), head_(head) {
  if (std::string err = cfg.validate(); !err.empty()) throw ConfigError(err);
  tok_embeddings = register_module("tok_embeddings", torch::nn::Embedding(cfg.vocab_size, cfg.d_model));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.n_layers; ++i) {
    blocks.push_back(DecoderBlock(cfg));
    layers->push_back(blocks.back());
  }
  norm = register_module("norm", RMSNorm(cfg.d_model, cfg.norm_eps));
  if (head == Head::scalar) {
    score = register_module("score", torch::nn::Linear(torch::nn::LinearOptions(cfg.d_model, 1).bias(false)));
  } else if (!cfg.tie_embeddings) {
    output = register_module(
        "output", torch::nn::Linear(torch::nn::LinearOptions(cfg.d_model, cfg.vocab_size).bias(false)));
  }
  init_weights();
}

void DecoderImpl::init_weights() {
  torch::NoGradGuard g;
  const double sd = cfg_.init_std;
  const double resid = sd / std::sqrt(2.0 * static_cast<double>(cfg_.n_layers));
  tok_embeddings->weight.normal_(0, sd);
  for (auto& b : blocks) {
    b->attention->wq->weight.normal_(0, sd);
    b->attention->wk->weight.normal_(0, sd);
    b->attention->wv->weight.normal_(0, sd);
    b->attention->wo->weight.normal_(0, resid);  // residual outputs: variance grows with depth
    b->feed_forward->w1->weight.normal_(0, sd);
    b->feed_forward->w2->weight.normal_(0, resid);
    b->feed_forward->w3->weight.normal_(0, sd);
  }
  if (output) output->weight.normal_(0, sd);
  if (score) score->weight.normal_(0, sd);
}

torch::Tensor DecoderImpl::head(const torch::Tensor& h) {
  if (head_ == Head::scalar) return score(h).squeeze(-1).to(torch::kFloat);  // (B, T)
  return torch::linear(h, lm_head_weight()).to(torch::kFloat);  // (B, T, V)
}

torch::Tensor DecoderImpl::trunk(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2, "Decoder expects tokens (B, T), got ", tokens.sizes());
  torch::Tensor x = tok_embeddings(tokens);  // (B, T, D)
  for (auto& b : blocks) x = b(x);
  return norm(x);
}

torch::Tensor DecoderImpl::trunk(const torch::Tensor& tokens, const torch::Tensor& positions) {
  TORCH_CHECK(tokens.dim() == 2 && positions.sizes() == tokens.sizes(),
              "Decoder: packed rows need tokens and positions of one shape (B, T), got ", tokens.sizes(), " and ",
              positions.sizes());
  const PackedRows packed = packed_rows(positions, cfg_.segment_len);
  torch::Tensor x = tok_embeddings(tokens);  // (B, T, D)
  for (auto& b : blocks) x = b(x, torch::Tensor(), nullptr, nullptr, &packed);
  return norm(x);
}

torch::Tensor DecoderImpl::blocks_from(const torch::Tensor& tokens, const StreamState& before,
                                       std::vector<torch::Tensor>* after, std::vector<torch::Tensor>* writes) {
  TORCH_CHECK(tokens.dim() == 2, "Decoder expects tokens (B, T), got ", tokens.sizes());
  TORCH_CHECK(tokens.size(0) == before.batch && before.layers.size() == blocks.size() &&
                  before.segment_len == cfg_.segment_len,
              "Decoder: the stream state was made for another model or batch");
  TORCH_CHECK(before.position() == 0, "Decoder: the stream state must be on a segment boundary, it is at ",
              before.position(), " of ", cfg_.segment_len);
  TORCH_CHECK(!before.no_memory, "Decoder: a no-memory stream state cannot be continued in parallel");
  torch::Tensor x = tok_embeddings(tokens);  // (B, T, D)
  for (size_t i = 0; i < blocks.size(); ++i) {
    const LayerStreamState& l = before.layers[i];
    const bool mem = l.M.defined();
    torch::Tensor mem0 = mem ? memory_pack(l.M, l.z) : torch::Tensor();
    if (after) after->emplace_back();
    if (writes) writes->emplace_back();
    x = blocks[i](x, mem0, after && mem ? &after->back() : nullptr, writes && mem ? &writes->back() : nullptr);
  }
  return x;
}

torch::Tensor DecoderImpl::trunk(const torch::Tensor& tokens, const StreamState& before) {
  return norm(blocks_from(tokens, before, nullptr));
}

void DecoderImpl::take_memory(StreamState& state, const std::vector<torch::Tensor>& after, int64_t L) const {
  for (size_t i = 0; i < blocks.size(); ++i) {
    LayerStreamState& l = state.layers[i];
    if (!l.M.defined()) continue;
    const int64_t Dv = l.M.size(-1);
    l.M = after[i].narrow(-1, 0, Dv).detach().contiguous();
    l.z = after[i].select(-1, Dv).detach().contiguous();
  }
  state.tokens_seen += L;
}

void DecoderImpl::advance(StreamState& state, const torch::Tensor& tokens, int64_t chunk_segments) {
  const int64_t T = tokens.size(-1), N = cfg_.segment_len;
  TORCH_CHECK(T % N == 0, "Decoder::advance takes whole segments of ", N, " tokens, got ", T);
  TORCH_CHECK(chunk_segments >= 1, "Decoder::advance: chunk_segments must be >= 1");
  for (int64_t at = 0; at < T; at += chunk_segments * N) {
    const int64_t L = std::min(chunk_segments * N, T - at);
    std::vector<torch::Tensor> after;
    blocks_from(tokens.narrow(1, at, L), state, &after);
    take_memory(state, after, L);
  }
}

torch::Tensor DecoderImpl::trunk_advance(StreamState& state, const torch::Tensor& tokens) {
  const int64_t T = tokens.size(-1);
  TORCH_CHECK(T % cfg_.segment_len == 0, "Decoder::trunk_advance takes whole segments of ", cfg_.segment_len,
              " tokens, got ", T);
  std::vector<torch::Tensor> after;
  torch::Tensor h = norm(blocks_from(tokens, state, &after));
  take_memory(state, after, T);
  return h;
}

std::vector<torch::Tensor> DecoderImpl::memory_writes(StreamState& state, const torch::Tensor& tokens) {
  const int64_t T = tokens.size(-1), N = cfg_.segment_len;
  TORCH_CHECK(T % N == 0, "Decoder::memory_writes takes whole segments of ", N, " tokens, got ", T);
  std::vector<torch::Tensor> after, writes;
  blocks_from(tokens, state, &after, &writes);
  take_memory(state, after, T);
  return writes;
}

torch::Tensor DecoderImpl::read_prompt(StreamState& state, const torch::Tensor& tokens, int64_t chunk_segments) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.size(1) >= 1, "read_prompt expects tokens (B, T>=1), got ", tokens.sizes());
  const int64_t T = tokens.size(1), N = cfg_.segment_len;
  if (state.no_memory) {
    // Nothing is written into memory, so no token before the last token's segment affects it:
    // skip to that segment's start and stream from there (what streaming every token would give).
    const int64_t last_start = (state.tokens_seen + T - 1) / N * N;
    if (last_start > state.tokens_seen) {
      const int64_t skip = last_start - state.tokens_seen;
      state.tokens_seen = last_start;
      torch::Tensor h = trunk_stream(state, tokens.narrow(1, skip, T - skip));
      return h.narrow(1, h.size(1) - 1, 1);
    }
  }
  int64_t at = 0;
  torch::Tensor h;
  if (state.position() != 0) {  // finish the segment in progress
    at = std::min(T, N - state.position());
    h = trunk_stream(state, tokens.narrow(1, 0, at));
  }
  const int64_t whole = (T - at - 1) / N * N;  // whole segments, keeping at least one token for the end
  if (whole > 0) {
    advance(state, tokens.narrow(1, at, whole), chunk_segments);
    at += whole;
  }
  if (at < T) h = trunk_stream(state, tokens.narrow(1, at, T - at));
  return h.narrow(1, h.size(1) - 1, 1);
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& tokens) { return head(trunk(tokens)); }

StreamState DecoderImpl::new_state(int64_t batch) const {
  return make_stream_state(batch, cfg_.n_layers, cfg_.kv_heads(), cfg_.head_dim(), cfg_.segment_len,
                           cfg_.memory.enabled, tok_embeddings->weight.device(), cfg_.memory.write_gate);
}

torch::Tensor DecoderImpl::trunk_stream(StreamState& state, const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.size(1) >= 1, "forward_stream expects tokens (B, t>=1), got ",
              tokens.sizes());
  TORCH_CHECK(tokens.size(0) == state.batch, "forward_stream: state is for batch ", state.batch,
              ", tokens have batch ", tokens.size(0));
  TORCH_CHECK(state.layers.size() == blocks.size() && state.segment_len == cfg_.segment_len,
              "forward_stream: state was made for another model");
  if (decode_step_applies(*this, tokens)) return decode_step(*this, state, tokens);  // one token, CPU fp32
  const int64_t pos = state.position();
  torch::Tensor x = tok_embeddings(tokens);  // (B, t, D)
  for (size_t i = 0; i < blocks.size(); ++i)
    x = blocks[i]->forward_stream(x, state.layers[i], pos, state.no_memory);
  state.tokens_seen += tokens.size(1);
  return norm(x);
}

torch::Tensor DecoderImpl::forward_stream(StreamState& state, const torch::Tensor& tokens) {
  if (head_ == Head::lm && decode_step_applies(*this, tokens))
    return decode_logits(trunk_stream(state, tokens), lm_head_weight());
  return head(trunk_stream(state, tokens));
}

}  // namespace infini
