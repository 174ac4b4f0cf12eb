// The passkey prompt builder (see passkey_prompt.h): data/synth.h's make_passkey, optionally
// wrapped in the chat template, exactly `length` tokens in all.
#include "train/eval/passkey_prompt.h"

#include "data/synth.h"

namespace infini {

PasskeyBuilder passkey_builder(const Tokenizer& tok, const ChatTemplate* chat) {
  const Tokenizer* t = &tok;
  std::vector<int> pre, post;  // the chat template around the prompt, when asked for
  if (chat) {
    pre = tok.encode(chat->user_prefix);
    post = tok.encode(chat->turn_end + chat->assistant_prefix);
  }
  return [t, pre, post](int64_t length, double depth, int digits, uint64_t seed) {
    const int64_t extra = static_cast<int64_t>(pre.size() + post.size());
    PasskeyCase c = make_passkey(*t, length - extra, depth, digits, seed);
    PasskeyPrompt p;
    p.key = c.key;
    p.key_position = c.key_position + static_cast<int64_t>(pre.size());
    p.ids.reserve(static_cast<size_t>(length));
    p.ids.push_back(c.ids[0]);  // BOS
    p.ids.insert(p.ids.end(), pre.begin(), pre.end());
    p.ids.insert(p.ids.end(), c.ids.begin() + 1, c.ids.end());
    p.ids.insert(p.ids.end(), post.begin(), post.end());
    return p;
  };
}

}  // namespace infini
