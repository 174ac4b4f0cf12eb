// Fused language-model head + cross-entropy: the mean next-token loss straight from the final
// hidden states, in row chunks, with the gradient formed in the same pass as the loss
// (d loss / d logits = softmax - onehot). The (tokens, V) fp32 logits never exist at once and
// are never written, saved, zero-filled and read back as the unfused head + cross_entropy does.
#pragma once
#include <torch/types.h>

namespace infini {

// sum_i weights[i] * (logsumexp(h[i] W^T) - (h[i] W^T)[targets[i]]), a scalar.
// h (N, D) fp32/fp64, w (V, D), targets (N) int64, weights (N) floating. The matmuls run in bf16
// when autocast is on (as the unfused head would), logits and their statistics in fp32 (fp64 when
// h is fp64). Differentiable in h and w. rows_per_chunk <= 0 picks ~16 MB of fp32 logits a chunk.
torch::Tensor fused_lm_head_loss(const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& targets,
                                 const torch::Tensor& weights, int64_t rows_per_chunk = 0);

}  // namespace infini
