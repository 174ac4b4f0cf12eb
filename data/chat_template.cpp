// Rendering records to (tokens, loss mask): segments of text, each encoded, masked or not.
// Not parsing or batching.
#include "data/chat_template.h"

#include <fmt/format.h>

#include "core/error.h"
#include "data/tokenizer.h"

namespace infini {
namespace {

struct Segment {
  std::string text;
  bool target;
};

// Adjacent segments with the same mask are merged before encoding so the tokenizer sees them whole.
Rendered encode_segments(const Tokenizer& tok, const std::vector<Segment>& segs, bool eos) {
  Rendered r;
  r.tokens.push_back(tok.bos_id());
  r.mask.push_back(0.f);
  size_t i = 0;
  while (i < segs.size()) {
    std::string text = segs[i].text;
    const bool target = segs[i].target;
    size_t j = i + 1;
    while (j < segs.size() && segs[j].target == target) text += segs[j++].text;
    const std::vector<int> ids = tok.encode(text);
    r.tokens.insert(r.tokens.end(), ids.begin(), ids.end());
    r.mask.insert(r.mask.end(), ids.size(), target ? 1.f : 0.f);
    i = j;
  }
  if (eos) {
    r.tokens.push_back(tok.eos_id());
    r.mask.push_back(1.f);
  }
  return r;
}

const std::string& prefix_of(const ChatTemplate& chat, const std::string& role) {
  if (role == "system") return chat.system_prefix;
  if (role == "user") return chat.user_prefix;
  return chat.assistant_prefix;
}

}  // namespace

std::string render_prompt_text(const ChatTemplate& chat, const std::string& user_message) {
  return chat.user_prefix + user_message + chat.turn_end + chat.assistant_prefix;
}

Rendered render_sft(const Tokenizer& tok, const ChatTemplate& chat, const SftRecord& r) {
  std::vector<Segment> segs;
  for (size_t i = 0; i < r.messages.size(); ++i) {
    const Message& m = r.messages[i];
    const bool last = i + 1 == r.messages.size();
    segs.push_back({prefix_of(chat, m.role), false});
    if (m.role == "assistant") {
      segs.push_back({m.content + (last ? "" : chat.turn_end), true});
    } else {
      segs.push_back({m.content + chat.turn_end, false});
    }
  }
  return encode_segments(tok, segs, true);
}

Rendered render_preference(const Tokenizer& tok, const ChatTemplate& chat, const PreferenceRecord& r,
                           const std::string& response) {
  const std::string prompt = r.transcript ? r.prompt : render_prompt_text(chat, r.prompt);
  return encode_segments(tok, {{prompt, false}, {response, true}}, true);
}

Rendered render_prompt(const Tokenizer& tok, const ChatTemplate& chat, const std::string& user_message) {
  return encode_segments(tok, {{render_prompt_text(chat, user_message), false}}, false);
}

TruncateOutcome truncate_rendered(Rendered& r, int64_t max_len, const std::string& mode, bool require_target) {
  TruncateOutcome out = TruncateOutcome::kept;
  const int64_t n = static_cast<int64_t>(r.tokens.size());
  if (n > max_len) {
    if (mode == "drop") return TruncateOutcome::dropped;
    if (mode == "right") {
      r.tokens.resize(static_cast<size_t>(max_len));
      r.mask.resize(static_cast<size_t>(max_len));
    } else if (mode == "left") {
      // keep BOS at 0, drop the oldest tokens after it
      const int64_t cut = n - max_len;
      r.tokens.erase(r.tokens.begin() + 1, r.tokens.begin() + 1 + cut);
      r.mask.erase(r.mask.begin() + 1, r.mask.begin() + 1 + cut);
      r.mask[0] = 0.f;
    } else {
      throw ConfigError(fmt::format("data.truncate must be left, right or drop, got '{}'", mode));
    }
    out = TruncateOutcome::truncated;
  }
  if (require_target) {
    bool any = false;
    for (float m : r.mask) any = any || m > 0.f;
    if (!any) return TruncateOutcome::dropped;
  }
  return out;
}

}  // namespace infini
