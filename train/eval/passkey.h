// Passkey retrieval evaluation: prompts of exact token lengths streamed through the model one
// segment at a time (bounded memory at any length), greedy answer, accuracy per length x depth.
// Not the prompts (train/eval/passkey_prompt.h) nor the CLI (train/cli/cmd_eval.cpp).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/decoder.h"
#include "data/data_config.h"
#include "data/tokenizer.h"
#include "train/eval/passkey_prompt.h"

namespace infini {

struct PasskeyOptions {
  std::vector<int64_t> lengths;             // prompt lengths in tokens
  std::vector<double> depths = {0, 0.5, 1};  // key depth in the haystack
  int64_t trials = 1;                       // prompts (different keys) per length x depth
  int digits = 5;                           // digits of the key
  uint64_t seed = 0;                        // keys and filler placement
  bool bf16 = false;                        // bf16 autocast around the forward
  bool no_memory = false;                   // memory reset per segment (StreamState::no_memory):
                                            // each segment sees only itself, the baseline that
                                            // shows what the memory retrieves
  int64_t extra_tokens = 2;                 // decoded beyond `digits` tokens
  std::function<void(int64_t)> on_tokens;   // prompt tokens read (for a progress line; called from
                                            // the workers, possibly at once)
  int workers = 1;                          // cases run at once, each on its own thread (with one
                                            // intra-op thread each: small ops scale better this way);
                                            // the same tokens for any number (log-probabilities
                                            // up to the last bits of a BLAS)
                                            // (`eval passkey` uses 1 for a model on a GPU)
  int shard = 0, shards = 1;                // data parallel: this process runs the cases whose index
                                            // (length, then depth, then trial order) is shard mod shards
};

struct PasskeyCaseResult {
  int64_t length = 0;
  double depth = 0;
  int64_t trial = 0;
  std::string key;
  std::string answer;  // decoded greedy continuation
  bool correct = false;
  double key_logprob = 0;  // log p(" KEY" | prompt), teacher-forced, in nats: graded where `correct` is
                           // 0/1 (0 = certain; a model spread evenly over the digits: -digits * ln 10)
  int64_t key_position = 0;
  double seconds = 0;       // prompt + answer
  double tokens_per_s = 0;  // prompt tokens / prompt seconds
  int64_t peak_rss_kb = 0;  // process peak resident memory after this case
};

// One case as a JSON object (the "cases" entries of passkey_results_json) and back (for gathering
// the shards of a data-parallel evaluation); from_json throws nlohmann::json errors on a bad object.
nlohmann::json passkey_case_json(const PasskeyCaseResult& r);
PasskeyCaseResult passkey_case_from_json(const nlohmann::json& j);

// Peak resident memory of this process in KiB: VmHWM from /proc/self/status, else ru_maxrss.
int64_t peak_rss_kb();

// Streams `ids` through the model in whole segments (the first chunk completes the state's current
// segment), the body through the trunk only; returns the logits of the last position (1, V) fp32.
// Call under InferenceMode. on_tokens (optional) is called with the number of prompt tokens read as
// the prompt is read (pieces of a few hundred segments; the same computation as without it).
torch::Tensor stream_prompt(Decoder& model, StreamState& state, const std::vector<int64_t>& ids, bool bf16,
                            const std::function<void(int64_t)>& on_tokens = {});

// Greedy decoding of `n` tokens after logits (1, V), fed back one at a time. Call under InferenceMode.
std::vector<int64_t> greedy_tokens(Decoder& model, StreamState& state, torch::Tensor logits, int64_t n, bool bf16);

// Teacher-forced log-probability of `ids` after logits (1, V): the sum of log p(ids[i] | ids[<i]),
// feeding ids[0..n-2] through `state` (which it advances: pass a clone to decode from the same
// point afterwards). Call under InferenceMode.
double continuation_logprob(Decoder& model, StreamState& state, torch::Tensor logits, const std::vector<int64_t>& ids,
                            bool bf16);

// True when the answer, leading whitespace removed, starts with the key and no further digit
// follows it (" 5." and " 5 is" answer key 5; " 55" does not).
bool passkey_correct(const std::string& answer, const std::string& key);

// Every length x depth x trial case, returned in that order; on_case sees each result as it is
// finished (in that order when workers == 1), never from two threads at once. peak_rss_kb is the
// process's, so with workers > 1 it covers the cases running alongside.
std::vector<PasskeyCaseResult> run_passkey_eval(Decoder& model, const Tokenizer& tok, const PasskeyBuilder& build,
                                                const PasskeyOptions& opt,
                                                const std::function<void(const PasskeyCaseResult&)>& on_case = {});

// The accuracy table (rows: lengths, columns: depths) with the mean key log-probability, tokens/s
// per length and peak RSS.
std::string passkey_table(const std::vector<PasskeyCaseResult>& results, const PasskeyOptions& opt);

nlohmann::json passkey_results_json(const std::vector<PasskeyCaseResult>& results, const PasskeyOptions& opt);

}  // namespace infini
