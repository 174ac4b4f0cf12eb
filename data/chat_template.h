// Rendering records to token ids plus a loss mask with the ChatTemplate of data_config.h.
// Not the record parsing (data/records.h) and not batching or padding (data/loader.h).
//
// A record renders as [BOS] + prompt (template) + response + [EOS]; mask[t] = 1 exactly where
// token t is a target that counts in the loss: response tokens and the closing EOS.
//   user turn:       user_prefix + content + turn_end
//   system turn:     system_prefix + content + turn_end
//   assistant turn:  assistant_prefix + content (+ turn_end when not last; masked with the content)
// A prompt for generation ends with the assistant prefix. Each text segment is encoded on its own,
// so mask boundaries fall exactly between segments.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/data_config.h"
#include "data/records.h"

namespace infini {

class Tokenizer;

struct Rendered {
  std::vector<int> tokens;
  std::vector<float> mask;  // same length as tokens
};

// The prompt text for a single user message, ending with the assistant prefix (for generation).
std::string render_prompt_text(const ChatTemplate& chat, const std::string& user_message);

Rendered render_sft(const Tokenizer& tok, const ChatTemplate& chat, const SftRecord& r);
// One side of a pair: `response` is r.chosen or r.rejected.
Rendered render_preference(const Tokenizer& tok, const ChatTemplate& chat, const PreferenceRecord& r,
                           const std::string& response);
// [BOS] + prompt text; mask all zero.
Rendered render_prompt(const Tokenizer& tok, const ChatTemplate& chat, const std::string& user_message);

enum class TruncateOutcome { kept, truncated, dropped };

// Fits r into max_len tokens: mode "right" keeps the start, "left" keeps BOS and the end, "drop"
// drops the record. A record left with no target (when require_target) is dropped too.
TruncateOutcome truncate_rendered(Rendered& r, int64_t max_len, const std::string& mode, bool require_target);

}  // namespace infini
