// The shared streaming decode loop (see decode.h).
#include "core/decode.h"

#include "core/compat.h"

namespace infini {

torch::Tensor feed_step(Decoder& model, StreamState& state, const torch::Tensor& next, bool bf16) {
  const torch::Device dev = model->tok_embeddings->weight.device();
  compat::AutocastGuard ac(bf16, dev.type());
  return model->forward_stream(state, next.reshape({-1, 1}).to(dev)).select(1, 0);  // (B, V)
}

void decode_loop(Decoder& model, StreamState& state, torch::Tensor logits, int64_t max_new_tokens,
                 const std::function<torch::Tensor(const torch::Tensor& logits)>& pick,
                 const std::function<bool(const torch::Tensor& next)>& take, bool bf16) {
  for (int64_t i = 0; i < max_new_tokens; ++i) {
    const torch::Tensor next = pick(logits);  // (B)
    if (!take(next) || i + 1 == max_new_tokens) break;
    logits = feed_step(model, state, next, bf16);
  }
}

}  // namespace infini
