// The one-token step of the streaming path on the CPU in fp32, written for speed: the same math as
// Decoder::trunk_stream for one token per row, in about a dozen tensor operations a layer instead of
// seventy. The projections, the attention's and the memory's small products go through
// core/few_rows_matmul.h (no per-call packing of the weights); the norms, RoPE, the cache writes,
// the memory's normaliser and the gate are plain loops over the rows; the softmax and the feature
// maps stay tensor operations (vectorised). Decoding is all one-token steps: at small batch their
// cost was the operations' count, and at batch 16 it is now the weights' products.
// Not the general streaming path (core/infini_attention.cpp), which the step falls back to whenever
// it does not apply (see decode_step_applies), and not the head (Decoder::head).
#pragma once
#include <torch/types.h>

#include "core/stream_state.h"

namespace infini {

struct DecoderImpl;

// Process-wide switch, on by default; off sends every step through the general path (to compare
// the two, in tests and `infini bench model`).
void set_decode_step_enabled(bool on);
bool decode_step_enabled();

// True when `tokens` (B, 1) can take the fast step: the switch is on, no gradient is recorded and
// no autocast is active, the model's weights are fp32 on the CPU without LoRA adapters.
bool decode_step_applies(const DecoderImpl& model, const torch::Tensor& tokens);

// One token per row through every block, advancing `state`: the hidden state after the final norm,
// (B, 1, D), what trunk_stream returns for the same call (to fp32 rounding).
torch::Tensor decode_step(DecoderImpl& model, StreamState& state, const torch::Tensor& tokens);

// The LM head for such a step: hidden (B, 1, D), weight (V, D) -> logits (B, 1, V), what
// Decoder::head gives, through the same products as the step's projections.
torch::Tensor decode_logits(const torch::Tensor& hidden, const torch::Tensor& weight);

}  // namespace infini
