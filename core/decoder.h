// Decoder: the Infini-Transformer language model (embedding, blocks, final norm, head), with a
// parallel training path and a streaming path that agree. Registered names follow llama2.c / Meta.
// Not generation, checkpoint I/O or losses (core/generate.h, core/model_io.h, train/).
#pragma once
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "core/decoder_block.h"
#include "core/lora_config.h"
#include "core/model_config.h"
#include "core/rmsnorm.h"
#include "core/stream_state.h"

namespace infini {

// lm: next-token logits; scalar: one score per position (reward / value models), Linear(D, 1).
enum class Head { lm, scalar };

struct DecoderImpl : torch::nn::Module {
  explicit DecoderImpl(const ModelConfig& cfg, Head head = Head::lm);

  // Training path, parallel over segments. tokens (B, T) int64, any T.
  // lm: logits (B, T, V) fp32; scalar: (B, T) fp32.
  torch::Tensor forward(const torch::Tensor& tokens);
  torch::Tensor trunk(const torch::Tensor& tokens);  // (B, T, D) hidden after the final norm
  // Rows that hold several records (data.pack): `positions` (B, T) int64 is each token's index
  // inside its record (core/packed_rows.h has the rule they follow). Every record gets what
  // trunk() gives it in a row of its own.
  torch::Tensor trunk(const torch::Tensor& tokens, const torch::Tensor& positions);
  // The same for tokens that continue a sequence whose first whole segments went into `before`
  // (trunk_stream or advance; before.position() == 0): equals trunk(whole sequence) at those
  // positions. The memory taken from `before` carries no gradient, so with memory.gradient: detach
  // this is exactly what training on the whole sequence would give for losses on these positions;
  // unless its M and z require grad (leaves the caller made), which then receive dloss/dmemory.
  torch::Tensor trunk(const torch::Tensor& tokens, const StreamState& before);
  // Feeds a prompt `tokens` (B, T >= 1) through `state` (at any position) and returns the final
  // hidden state at its last position (B, 1, D), as trunk_stream would: the segment in progress is
  // finished by streaming, whole segments then advance the memory in parallel chunks of
  // `chunk_segments`, and the rest (at least the last token) is streamed. Activations stay bounded
  // by one chunk whatever T is. Inference only. 4 segments: on the demo model (segment 128, one
  // thread) as fast as chunks of 64 and no more resident memory than one segment at a time.
  // A no_memory state skips straight to the last token's segment (earlier ones cannot matter).
  torch::Tensor read_prompt(StreamState& state, const torch::Tensor& tokens, int64_t chunk_segments = 4);
  // Moves `state` (on a segment boundary) past `tokens`, whole segments only, with the parallel
  // path in chunks of `chunk_segments`: the memory trunk_stream would leave, from a few large
  // matmuls instead of one small pass per segment, with one chunk's activations alive.
  // For prompts and loss-free prefixes: call under NoGradGuard/InferenceMode.
  void advance(StreamState& state, const torch::Tensor& tokens, int64_t chunk_segments = 4);
  // advance over one chunk that also returns its hidden states: `tokens` (whole segments) from
  // `state` (on a segment boundary) through the parallel path, `state` moved past them. Returns
  // (B, T, D) after the final norm, what trunk_stream would give token by token. Inference only.
  torch::Tensor trunk_advance(StreamState& state, const torch::Tensor& tokens);
  // For training with memory.gradient: detach: runs `tokens` (whole segments) from `state` with
  // gradient, moves `state` past them like advance, and returns per layer (undefined without
  // memory) the sum over the segments of what each one wrote into the packed memory [M | z]
  // (memory_writes_packed): backward of <dloss/dmemory, writes> gives those writes the gradient a
  // loss later in the sequence puts on the memory, each write taken from the memory before it.
  std::vector<torch::Tensor> memory_writes(StreamState& state, const torch::Tensor& tokens);
  torch::Tensor head(const torch::Tensor& hidden);    // (B, T, D) -> logits (B, T, V) or scores (B, T), fp32

  // Streaming path: tokens (B, t), t >= 1, any split of the sequence; returns what forward() gives
  // at those positions of the whole sequence. Inference only: call under NoGradGuard/InferenceMode.
  StreamState new_state(int64_t batch) const;
  torch::Tensor forward_stream(StreamState& state, const torch::Tensor& tokens);
  torch::Tensor trunk_stream(StreamState& state, const torch::Tensor& tokens);  // (B, t, D)

  // The LM head's (V, D) weight: `output`, or the embedding when tied. Head::lm only.
  torch::Tensor lm_head_weight() const { return output ? output->weight : tok_embeddings->weight; }

  const ModelConfig& config() const { return cfg_; }
  Head head_kind() const { return head_; }

  torch::nn::Embedding tok_embeddings{nullptr};  // (V, D)
  torch::nn::ModuleList layers{nullptr};         // DecoderBlock x n_layers
  std::vector<DecoderBlock> blocks;              // the same blocks, typed
  RMSNorm norm{nullptr};
  torch::nn::Linear output{nullptr};             // (V, D); absent when tied or scalar
  torch::nn::Linear score{nullptr};              // (1, D); only for Head::scalar

  // LoRA (core/lora.h): the adapters' config once add_lora_adapters ran (rank 0: none), and the
  // base model they sit on (a model file or Hugging Face folder, absolute, and its fingerprint),
  // set when the base weights are loaded; a LoRA model file names it.
  LoraConfig lora;
  std::string lora_base, lora_base_fingerprint;

 private:
  void init_weights();
  // The blocks over `tokens` starting from `before`'s memory; fills `after` (one packed [M | z] per
  // layer) and `writes` (memory_writes_packed per layer) when given. Returns the last block's
  // output (before the final norm).
  torch::Tensor blocks_from(const torch::Tensor& tokens, const StreamState& before, std::vector<torch::Tensor>* after,
                            std::vector<torch::Tensor>* writes = nullptr);
  // Moves `state` past L tokens whose memory after is `after` (one packed state per layer).
  void take_memory(StreamState& state, const std::vector<torch::Tensor>& after, int64_t L) const;
  ModelConfig cfg_;
  Head head_;
};
TORCH_MODULE(Decoder);

}  // namespace infini
