// The passkey prompts evaluation runs on: a builder of prompts of exact token lengths with the key
// at a given depth, as data/synth.h makes them (optionally in the chat template SFT records use).
// Not the evaluation loop (train/eval/passkey.h) nor the filler text (data/synth.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/data_config.h"
#include "data/tokenizer.h"

namespace infini {

// One prompt: ids (BOS first, exactly the requested length), the key and where its first token sits.
struct PasskeyPrompt {
  std::vector<int64_t> ids;
  std::string key;
  int64_t key_position = 0;
};

// Builds the prompt of `length` tokens with the key at `depth` in [0, 1].
using PasskeyBuilder = std::function<PasskeyPrompt(int64_t length, double depth, int digits, uint64_t seed)>;

// The passkey prompts of data/synth.h (make_passkey) as a builder; `tok` must outlive it. With `chat`,
// the prompt is wrapped like an SFT prompt ([BOS] user_prefix PROMPT turn_end assistant_prefix), still
// exactly `length` tokens in all, for models fine-tuned on passkey SFT records.
PasskeyBuilder passkey_builder(const Tokenizer& tok, const ChatTemplate* chat = nullptr);

}  // namespace infini
