// Fuzz target: the tokenizer-free parts of chat rendering (data/chat_template.h,
// data/records.h): render_prompt_text, split_transcripts and truncate_rendered on a synthetic
// rendering. Input: byte 0 picks the truncate mode (right, left, drop, or an invalid one), bytes 1-2
// give max_len (1..512) and require_target, the rest is two texts split at the first '\0'.
// Properties: every outcome of truncate_rendered as documented; the split puts the transcripts
// back together. Not render_sft/render_preference/render_prompt: they need a sentencepiece
// tokenizer, which cannot be loaded under AddressSanitizer (its shim is dlopened with
// RTLD_DEEPBIND, which the sanitizer runtime refuses).
#include <string>

#include "data/chat_template.h"
#include "data/records.h"
#include "tests/fuzz/targets.h"

namespace infini::fuzz {

namespace chat_target {

std::string check_truncate(const Rendered& before, const Rendered& after, int64_t max_len, const std::string& mode,
                           bool require_target, TruncateOutcome out) {
  const int64_t n = static_cast<int64_t>(before.tokens.size());
  if (after.tokens.size() != after.mask.size()) return "tokens and mask differ in length";
  bool target = false;
  for (float m : after.mask) target = target || m > 0.f;
  if (out == TruncateOutcome::dropped) {
    if (!(mode == "drop" && n > max_len) && !(require_target && !target)) return "dropped a record it should keep";
    return "";
  }
  if (require_target && !target) return "kept a record without a target";
  if (out == TruncateOutcome::kept) {
    if (n > max_len) return "kept a record longer than max_len";
    if (after.tokens != before.tokens || after.mask != before.mask) return "changed a record it kept";
    return "";
  }
  if (n <= max_len) return "truncated a record that fits";
  if (static_cast<int64_t>(after.tokens.size()) != max_len) return "truncated to a length other than max_len";
  if (mode == "right") {
    if (!std::equal(after.tokens.begin(), after.tokens.end(), before.tokens.begin())) return "right: not the start";
  } else if (mode == "left") {
    if (after.tokens[0] != before.tokens[0] || after.mask[0] != 0.f) return "left: BOS not kept unmasked";
    if (!std::equal(after.tokens.begin() + 1, after.tokens.end(), before.tokens.end() - (max_len - 1)))
      return "left: not the end";
  } else {
    return "truncated with an invalid mode";
  }
  return "";
}

}  // namespace chat_target

Outcome fuzz_chat(const uint8_t* data, size_t size) {
  if (size < 3) return {};
  static const char* modes[] = {"right", "left", "drop", "middle"};
  const std::string mode = modes[data[0] % 4];
  const bool require_target = data[1] & 1;
  const int64_t max_len = 1 + ((static_cast<int64_t>(data[1] >> 1) << 8 | data[2]) % 512);
  const std::string rest(reinterpret_cast<const char*>(data + 3), size - 3);
  const size_t sep = rest.find('\0');
  const std::string chosen = rest.substr(0, sep), rejected = sep == std::string::npos ? "" : rest.substr(sep + 1);
  return guarded([&](Outcome& o) {
    const ChatTemplate chat;
    const std::string text = render_prompt_text(chat, chosen);
    if (text != chat.user_prefix + chosen + chat.turn_end + chat.assistant_prefix) {
      o.finding = "render_prompt_text: not user_prefix + message + turn_end + assistant_prefix";
      return;
    }
    std::string prompt, a, b;
    if (split_transcripts(chosen, rejected, &prompt, &a, &b)) {
      const std::string marker = "\n\nAssistant:";
      if (prompt + a != chosen || prompt + b != rejected || prompt.size() < marker.size() ||
          prompt.compare(prompt.size() - marker.size(), marker.size(), marker) != 0) {
        o.finding = "split_transcripts: the prompt does not end in the marker or the parts do not add up";
        return;
      }
    }
    // A rendering: BOS, then one token per byte; bytes with the low bit set are targets.
    Rendered r;
    r.tokens.push_back(1);
    r.mask.push_back(0.f);
    for (unsigned char c : rest) {
      r.tokens.push_back(c);
      r.mask.push_back(c & 1 ? 1.f : 0.f);
    }
    const Rendered before = r;
    const TruncateOutcome out = truncate_rendered(r, max_len, mode, require_target);
    o.accepted = true;
    const std::string broken = chat_target::check_truncate(before, r, max_len, mode, require_target, out);
    if (!broken.empty()) o.finding = "truncate_rendered (" + mode + ", max_len " + std::to_string(max_len) + "): " + broken;
  });
}

}  // namespace infini::fuzz
