// Long-document perplexity: a token stream fed through the model segment by segment (bounded
// memory), with the loss overall and per position bucket, optionally with memory switched off.
// Not the CLI (train/cli/cmd_eval.cpp) nor training-time validation (train/run/trainer.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/decoder.h"
#include "data/tokenizer.h"

namespace infini {

// Targets whose position in the document (BOS = position 0) is in [begin, end); end < 0 = no end.
struct PplBucket {
  int64_t begin = 0;
  int64_t end = -1;
  double nll_sum = 0.0;  // sum of -log p(target) in nats
  int64_t count = 0;     // targets counted

  double mean_nll() const;  // NaN when empty
  double ppl() const;       // exp(mean_nll)
  std::string label() const;  // "0-2K", "128K+"
};

struct PplOptions {
  // --no-memory: StreamState::no_memory, so no segment is ever written into memory and every memory
  // read is exactly 0. Each segment then sees only itself, through the gate's local share:
  // A = (1 - sigmoid(beta)) * A_dot. This is the same weights run on every segment as if it were
  // the first segment of a fresh document (what a parallel forward of each segment alone gives),
  // NOT a model trained without memory (memory.enabled = false has no gate at all).
  bool no_memory = false;
  bool bf16 = false;      // bf16 autocast around the forward (memory stays fp32)
  // 0: chunks of `chunk_segments` whole segments through the parallel path (Decoder::trunk_advance:
  // a few large matmuls per chunk, the memory handed on), the ragged end streamed. > 0: this many
  // tokens per call through the streaming path (forward_stream), any split; slower, for tests.
  int64_t chunk = 0;
  int64_t chunk_segments = 4;  // segments per parallel chunk (activations of one chunk alive)
  std::function<void(int64_t)> on_tokens;  // after each chunk: the tokens read so far (a progress line)
};

struct PplResult {
  PplBucket overall;
  std::vector<PplBucket> buckets;  // default_ppl_buckets() filled in
  int64_t tokens = 0;              // tokens fed (BOS included)
  double seconds = 0.0;
  bool no_memory = false;
};

// 0-2K, 2K-8K, 8K-32K, 32K-128K, 128K+ (K = 1024), empty.
std::vector<PplBucket> default_ppl_buckets();

// Next-token loss of `tokens` (one document, BOS first) streamed through `model` in chunks, so only
// one chunk's activations and the fixed-size StreamState are alive at a time. fp32 without bf16.
// Runs on the device of the model's weights; the per-target losses come back to the host per chunk.
PplResult stream_perplexity(Decoder& model, const std::vector<int64_t>& tokens, const PplOptions& opt);

// Reads a UTF-8 text file and tokenizes it piecewise (blocks of about 1 MiB cut after a newline),
// so a long file is never held as one string with its pieces; BOS is prepended. Stops after
// max_tokens tokens in total (0 = no limit). Throws infini::Error when the file cannot be read or
// holds no tokens.
std::vector<int64_t> tokenize_text_file(const Tokenizer& tok, const std::string& path, int64_t max_tokens = 0);

nlohmann::json ppl_result_json(const PplResult& r);

// Several documents' results (of one no_memory setting) as one: each bucket's and the overall
// sums of -log p and targets added, tokens and seconds summed. Throws infini::Error when the parts
// mix settings or bucket edges.
PplResult merge_ppl_results(const std::vector<PplResult>& parts);

// The sums a result is made of, as JSON, and back: exact (doubles round-trip), for gathering the
// results of other ranks.
nlohmann::json ppl_sums_json(const PplResult& r);
PplResult ppl_result_from_sums(const nlohmann::json& j);

}  // namespace infini
