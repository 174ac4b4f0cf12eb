// The streaming decode loop that generation, passkey evaluation and PPO rollouts share: from the
// logits after a prompt, pick the next tokens of every row, hand them to the caller, feed them
// through the stream state (one token per step: the prefix is never recomputed), repeat.
// Not sampling itself (core/generate.h) nor what a caller keeps of the tokens.
#pragma once
#include <cstdint>
#include <functional>

#include <torch/types.h>

#include "core/decoder.h"
#include "core/stream_state.h"

namespace infini {

// Feeds `next` (B) int64 (any device) as one token per row; returns the logits (B, V) after it.
// bf16: under bf16 autocast on the model's device.
torch::Tensor feed_step(Decoder& model, StreamState& state, const torch::Tensor& next, bool bf16 = false);

// At most max_new_tokens steps. Each step: next = pick(logits (B, V)) -> (B) int64, then
// keep_going = take(next); the loop stops when take returns false or after the last step, and
// otherwise feeds `next` (feed_step), so no forward is spent on a token that will not be picked.
void decode_loop(Decoder& model, StreamState& state, torch::Tensor logits, int64_t max_new_tokens,
                 const std::function<torch::Tensor(const torch::Tensor& logits)>& pick,
                 const std::function<bool(const torch::Tensor& next)>& take, bool bf16 = false);

}  // namespace infini
