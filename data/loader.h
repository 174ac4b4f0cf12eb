// Loader: the one data loader of every stage (token shards, SFT, preference pairs, PPO prompts):
// deterministic shuffling, rank sharding, padding, optional prefetch and an exactly resumable state.
// Not the file formats (data/token_shards.h, data/records.h) nor rendering (data/chat_template.h).
//
// Samples: for `tokens`, row i is the T = seq_len tokens starting at i * (T - 1) of the
// concatenated shards (rows overlap by one token, so every token after the first is a target
// exactly once); mask is 1 on positions 1..T-1. For records, one rendered record per sample.
// Order: epoch e is a permutation of all samples from (seed, e) (identity when shuffle is off), and
// training reads the epochs one after another as one global stream, batch_size samples a batch,
// running on across epoch ends (always full). With W ranks, batch_size is the global batch: rank
// r gets the r-th of W equal, contiguous slices of each global batch, so W ranks together read
// exactly the batches one rank would, and the state (a position in the global stream) is the same
// on every rank and resumes on any world size. all_batches() is one unshuffled pass, rank r taking
// samples r, r + W, r + 2W, ...
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/batch.h"
#include "data/chat_template.h"
#include "data/data_config.h"

namespace infini {

class Tokenizer;
class TokenShard;

enum class Split { train, val };

class Loader {
 public:
  // tok may be nullptr for the tokens format. Throws infini::Error for unreadable or empty data;
  // a ConfigError when batch_size is not a multiple of world_size.
  Loader(const DataConfig& cfg, Split split, const Tokenizer* tok, int64_t batch_size, uint64_t seed,
         int rank = 0, int world_size = 1);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // True when the config names any data for the split (val of `tokens` falls back to shard dirs).
  static bool has_split(const DataConfig& cfg, Split split);

  Batch next();                        // this rank's slice of the next global batch, endless over epochs
  int64_t epoch() const;               // epoch of the next sample the consumer gets
  int64_t size() const;                // samples of one all_batches() pass on this rank
  int64_t total_size() const { return num_samples_; }  // samples per epoch on all ranks
  nlohmann::json state() const;        // the consumer's position; prefetched batches do not count
  // Any world size's state resumes on any other; a state saved with another world size is logged.
  void load_state(const nlohmann::json& s);
  // One pass over this rank's samples in file order, the last batch partial; max_batches < 0 = all.
  std::vector<Batch> all_batches(int64_t max_batches = -1) const;

  // data.pack: from now on, the records of every batch share rows (data/packing.h) for a model with
  // segments of segment_len tokens, and batches carry positions. Call before the first batch.
  void pack_rows(int64_t segment_len);

  int64_t vocab_size() const { return vocab_size_; }  // ids in the data are below this
  int64_t seq_len() const { return cfg_.seq_len; }
  const std::string& format() const { return cfg_.format; }

 private:
  struct Position {
    int64_t epoch = 0, index = 0;  // index: next position in the epoch's global order
  };
  void load_tokens(const std::vector<std::string>& dirs, Split split);
  void load_records(const std::vector<std::string>& files);
  int64_t rank_size(int64_t n) const;
  std::vector<int64_t> epoch_order(int64_t epoch) const;  // all sample ids of an epoch, in order
  // Advances pos by one global batch and returns this rank's slice of its ids; caches the current
  // epoch's order.
  std::vector<int64_t> take_ids(Position& pos, std::vector<int64_t>& order, int64_t& order_epoch) const;
  Batch make_batch(const std::vector<int64_t>& ids) const;
  Batch make_packed_batch(const std::vector<int64_t>& ids) const;
  void start_prefetch();
  void stop_prefetch();
  void prefetch_loop();

  DataConfig cfg_;
  const Tokenizer* tok_;
  int64_t batch_size_;
  uint64_t seed_;
  int rank_, world_;
  int64_t num_samples_ = 0, vocab_size_ = 0;
  int pad_id_ = 0;
  int64_t pack_segment_len_ = 0;  // > 0: records are packed into rows (pack_rows)

  // tokens format
  std::vector<std::unique_ptr<TokenShard>> shards_;
  std::vector<int64_t> shard_start_;  // offset of each shard in the concatenation
  int64_t total_tokens_ = 0;
  // record formats
  std::vector<Rendered> samples_, rejected_;
  std::vector<std::string> answers_;

  // consumer position (what state() reports) and the synchronous order cache
  Position pos_;
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;

  // prefetch: the producer runs ahead on its own position; each queued batch carries the
  // consumer position after it, which becomes pos_ when the batch is handed out
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Batch, Position>> queue_;
  Position producer_;
  bool stop_ = false;
  std::string worker_error_;
};

}  // namespace infini
