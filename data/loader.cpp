// Loader: sample storage per format, the epoch order, batch assembly and the prefetch thread.
// Not file parsing (records.cpp, token_shards.cpp) and not rendering (chat_template.cpp).
#include "data/loader.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "data/packing.h"
#include "data/records.h"
#include "data/token_shards.h"
#include "data/tokenizer.h"
#include "data/seed_mix.h"

namespace infini {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Runs f(i) for i in [0, n) on all cores; the first failure (lowest i) is rethrown.
template <class F> void parallel_for(int64_t n, F&& f) {
  const int64_t threads = std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()), std::max<int64_t>(1, n / 64));
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::vector<std::string> errors(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        for (int64_t i = t * n / threads; i < (t + 1) * n / threads; ++i) f(i);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(t)] = e.what();
      }
    });
  }
  for (auto& th : pool) th.join();
  for (const auto& e : errors)
    if (!e.empty()) throw Error(e);
}

}  // namespace

bool Loader::has_split(const DataConfig& cfg, Split split) {
  if (split == Split::train) return !cfg.train.empty();
  return !cfg.val.empty() || (cfg.format == "tokens" && !cfg.train.empty());
}

Loader::Loader(const DataConfig& cfg, Split split, const Tokenizer* tok, int64_t batch_size, uint64_t seed, int rank,
               int world_size)
    : cfg_(cfg), tok_(tok), batch_size_(batch_size), seed_(seed), rank_(rank), world_(world_size) {
  const std::string& f = cfg_.format;
  if (f != "tokens" && f != "sft" && f != "preference" && f != "prompts")
    throw ConfigError(fmt::format("data.format must be tokens, sft, preference or prompts, got '{}'", f));
  if (batch_size_ < 1) throw ConfigError(fmt::format("batch size must be at least 1, got {}", batch_size_));
  if (world_ >= 1 && batch_size_ % world_ != 0)
    throw ConfigError(fmt::format("batch size {} is not a multiple of the world size {}: each of the {} ranks takes an "
                                  "equal share of every batch", batch_size_, world_, world_));
  if (cfg_.seq_len < 2) throw ConfigError(fmt::format("data.seq_len must be at least 2, got {}", cfg_.seq_len));
  if (cfg_.prefetch < 0) throw ConfigError(fmt::format("data.prefetch must be >= 0, got {}", cfg_.prefetch));
  if (cfg_.truncate != "left" && cfg_.truncate != "right" && cfg_.truncate != "drop")
    throw ConfigError(fmt::format("data.truncate must be left, right or drop, got '{}'", cfg_.truncate));
  if (world_ < 1 || rank_ < 0 || rank_ >= world_)
    throw ConfigError(fmt::format("rank {} is not in [0, world_size {})", rank_, world_));
  const char* split_name = split == Split::train ? "train" : "val";
  if (f == "tokens") {
    const auto& dirs = (split == Split::val && !cfg_.val.empty()) ? cfg_.val : cfg_.train;
    if (dirs.empty()) throw ConfigError(fmt::format("data.{} lists no shard directories", split_name));
    load_tokens(dirs, split);
  } else {
    if (!tok_) throw ConfigError(fmt::format("data.format {} needs a tokenizer (tokenizer.model)", f));
    const auto& files = split == Split::train ? cfg_.train : cfg_.val;
    if (files.empty()) throw ConfigError(fmt::format("data.{} lists no record files", split_name));
    load_records(files);
  }
  if (rank_size(num_samples_) == 0)
    throw Error(fmt::format("data.{}: {} samples cannot give each of {} ranks one", split_name, num_samples_, world_));
}

Loader::~Loader() { stop_prefetch(); }

void Loader::load_tokens(const std::vector<std::string>& dirs, Split split) {
  std::vector<std::string> files;
  std::vector<std::pair<std::string, int64_t>> recorded;  // (shard dir, tokens the index records) per file
  std::vector<int64_t> index_vocab;  // the index's vocab_size per file
  for (const auto& d : dirs) {
    const ShardIndex idx = read_shard_index(d);
    if (tok_ && tok_->vocab_size() < idx.vocab_size)
      throw Error(fmt::format("{}/index.json: shards use a vocabulary of {} but the tokenizer {} has {}", d,
                              idx.vocab_size, tok_->path(), tok_->vocab_size()));
    // Token ids only mean something under the tokenizer that made them.
    if (tok_ && !idx.tokenizer_hash.empty() && idx.tokenizer_hash != tok_->content_hash())
      throw ConfigError(fmt::format("{}/index.json: the shards were made with another tokenizer ({}, hash {}) than "
                                    "tokenizer.model {} (hash {}); prepare them again with this one or use that one",
                                    d, idx.tokenizer.empty() ? "unnamed" : idx.tokenizer, idx.tokenizer_hash,
                                    tok_->path(), tok_->content_hash()));
    vocab_size_ = std::max(vocab_size_, idx.vocab_size);
    pad_id_ = idx.eos_id;
    const bool want_val = split == Split::val && (cfg_.val.empty() || !idx.val_files.empty());
    const auto& chosen = want_val ? idx.val_files : idx.train_files;
    const auto& counts = want_val ? idx.val_tokens : idx.train_tokens;
    for (size_t i = 0; i < chosen.size(); ++i) {
      files.push_back(chosen[i]);
      recorded.push_back({d, counts[i]});
      index_vocab.push_back(idx.vocab_size);
    }
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& file = files[i];
    shards_.push_back(std::make_unique<TokenShard>(file));
    // The loader's vocab_size is the index's: every id of the shard (below its header's) must be below it.
    if (shards_.back()->vocab_size() > index_vocab[i])
      throw Error(fmt::format("{}/index.json: vocab_size is {}, but {} holds ids of a vocabulary of {} (the index or "
                              "the shard is damaged; run infini data prepare again)", recorded[i].first,
                              index_vocab[i], file, shards_.back()->vocab_size()));
    if (recorded[i].second >= 0 && recorded[i].second != shards_.back()->size())
      throw Error(fmt::format("{}/index.json: {} holds {} tokens but the index records {} (the index or the shard is "
                              "damaged; run infini data prepare again)", recorded[i].first, file,
                              shards_.back()->size(), recorded[i].second));
    shard_start_.push_back(total_tokens_);
    total_tokens_ += shards_.back()->size();
  }
  const int64_t T = cfg_.seq_len;
  num_samples_ = total_tokens_ >= T ? (total_tokens_ - 1) / (T - 1) : 0;
  if (num_samples_ == 0)
    throw Error(fmt::format("empty dataset: the {} shards of {} hold {} tokens, fewer than data.seq_len = {}",
                            split == Split::train ? "train" : "val", join(dirs), total_tokens_, T));
}

void Loader::load_records(const std::vector<std::string>& files) {
  std::vector<RawRecord> raw;
  for (const auto& file : files) {
    auto r = read_record_file(file, cfg_.max_record_bytes);
    raw.insert(raw.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
  }
  if (raw.empty()) throw Error(fmt::format("empty dataset: no records in {}", join(files)));
  vocab_size_ = tok_->vocab_size();
  pad_id_ = tok_->pad_id();
  const int64_t n = static_cast<int64_t>(raw.size());
  const std::string& f = cfg_.format;
  // Parse sequentially so the first bad record reported is the first in the file.
  std::vector<SftRecord> sft;
  std::vector<PreferenceRecord> pref;
  std::vector<PromptRecord> prompts;
  for (const auto& r : raw) {
    if (f == "sft") sft.push_back(parse_sft_record(r.value, r.where));
    else if (f == "preference") pref.push_back(parse_preference_record(r.value, r.where));
    else prompts.push_back(parse_prompt_record(r.value, r.where));
  }
  std::vector<Rendered> chosen(static_cast<size_t>(n)), rejected(f == "preference" ? static_cast<size_t>(n) : 0);
  std::vector<TruncateOutcome> outcome(static_cast<size_t>(n));
  parallel_for(n, [&](int64_t i) {
    const size_t k = static_cast<size_t>(i);
    if (f == "sft") {
      chosen[k] = render_sft(*tok_, cfg_.chat, sft[k]);
      outcome[k] = truncate_rendered(chosen[k], cfg_.seq_len, cfg_.truncate, true);
    } else if (f == "preference") {
      chosen[k] = render_preference(*tok_, cfg_.chat, pref[k], pref[k].chosen);
      rejected[k] = render_preference(*tok_, cfg_.chat, pref[k], pref[k].rejected);
      const auto a = truncate_rendered(chosen[k], cfg_.seq_len, cfg_.truncate, true);
      const auto b = truncate_rendered(rejected[k], cfg_.seq_len, cfg_.truncate, true);
      outcome[k] = (a == TruncateOutcome::dropped || b == TruncateOutcome::dropped) ? TruncateOutcome::dropped
                   : (a == TruncateOutcome::truncated || b == TruncateOutcome::truncated) ? TruncateOutcome::truncated
                                                                                            : TruncateOutcome::kept;
    } else {
      chosen[k] = render_prompt(*tok_, cfg_.chat, prompts[k].prompt);
      outcome[k] = truncate_rendered(chosen[k], cfg_.seq_len, cfg_.truncate, false);
    }
  });
  int64_t truncated = 0, dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    const size_t k = static_cast<size_t>(i);
    if (outcome[k] == TruncateOutcome::dropped) {
      ++dropped;
      continue;
    }
    truncated += outcome[k] == TruncateOutcome::truncated;
    samples_.push_back(std::move(chosen[k]));
    if (f == "preference") rejected_.push_back(std::move(rejected[k]));
    if (f == "prompts") answers_.push_back(prompts[k].answer);
  }
  if (truncated || dropped)
    spdlog::info("data {}: {} of {} records longer than seq_len {} ({} truncated, {} dropped: data.truncate={})",
                 join(files), truncated + dropped, n, cfg_.seq_len, truncated, dropped, cfg_.truncate);
  num_samples_ = static_cast<int64_t>(samples_.size());
  if (num_samples_ == 0)
    throw Error(fmt::format("empty dataset: all {} records of {} were dropped (longer than data.seq_len = {})", n,
                            join(files), cfg_.seq_len));
}

int64_t Loader::rank_size(int64_t n) const { return n / world_ + (rank_ < n % world_ ? 1 : 0); }
int64_t Loader::size() const { return rank_size(num_samples_); }

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> perm(static_cast<size_t>(num_samples_));
  for (int64_t i = 0; i < num_samples_; ++i) perm[static_cast<size_t>(i)] = i;
  if (cfg_.shuffle) {
    // Own Fisher-Yates: std::shuffle's algorithm is implementation-defined.
    std::mt19937_64 rng(splitmix64(seed_ ^ splitmix64(static_cast<uint64_t>(epoch) + 0x5EEDULL)));
    for (int64_t i = num_samples_ - 1; i > 0; --i) {
      const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
      std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
    }
  }
  return perm;
}

std::vector<int64_t> Loader::take_ids(Position& pos, std::vector<int64_t>& order, int64_t& order_epoch) const {
  std::vector<int64_t> ids;
  ids.reserve(static_cast<size_t>(batch_size_));
  const int64_t n = num_samples_;
  while (static_cast<int64_t>(ids.size()) < batch_size_) {
    if (order_epoch != pos.epoch) {
      order = epoch_order(pos.epoch);
      order_epoch = pos.epoch;
    }
    ids.push_back(order[static_cast<size_t>(pos.index)]);
    if (++pos.index == n) {
      ++pos.epoch;
      pos.index = 0;
    }
  }
  const int64_t share = batch_size_ / world_;
  return {ids.begin() + rank_ * share, ids.begin() + (rank_ + 1) * share};
}

Batch Loader::make_batch(const std::vector<int64_t>& ids) const {
  const int64_t B = static_cast<int64_t>(ids.size());
  Batch b;
  if (cfg_.format == "tokens") {
    const int64_t T = cfg_.seq_len;
    b.tokens = torch::empty({B, T}, torch::kInt64);  // (B, T)
    int64_t* out = b.tokens.data_ptr<int64_t>();
    for (int64_t r = 0; r < B; ++r) {
      int64_t start = ids[static_cast<size_t>(r)] * (T - 1), done = 0;
      // a row may span shard files
      size_t s = static_cast<size_t>(std::upper_bound(shard_start_.begin(), shard_start_.end(), start) - shard_start_.begin() - 1);
      while (done < T) {
        const int64_t local = start + done - shard_start_[s];
        const int64_t n = std::min(T - done, shards_[s]->size() - local);
        shards_[s]->read(local, n, out + r * T + done);
        done += n;
        ++s;
      }
    }
    b.loss_mask = torch::ones({B, T}, torch::kFloat32);  // (B, T)
    b.loss_mask.select(1, 0).zero_();
    b.lengths = torch::full({B}, T, torch::kInt64);
    return b;
  }
  if (pack_segment_len_ > 0) return make_packed_batch(ids);
  auto fill = [&](const std::vector<Rendered>& src, int64_t T, torch::Tensor& tokens, torch::Tensor& mask,
                  torch::Tensor& lengths) {
    tokens = torch::full({B, T}, static_cast<int64_t>(pad_id_), torch::kInt64);  // (B, T)
    mask = torch::zeros({B, T}, torch::kFloat32);                                 // (B, T)
    lengths = torch::empty({B}, torch::kInt64);                                   // (B)
    int64_t* tp = tokens.data_ptr<int64_t>();
    float* mp = mask.data_ptr<float>();
    int64_t* lp = lengths.data_ptr<int64_t>();
    for (int64_t r = 0; r < B; ++r) {
      const Rendered& x = src[static_cast<size_t>(ids[static_cast<size_t>(r)])];
      std::copy(x.tokens.begin(), x.tokens.end(), tp + r * T);
      std::copy(x.mask.begin(), x.mask.end(), mp + r * T);
      lp[r] = static_cast<int64_t>(x.tokens.size());
    }
  };
  int64_t T = 1;
  for (int64_t id : ids) {
    T = std::max<int64_t>(T, static_cast<int64_t>(samples_[static_cast<size_t>(id)].tokens.size()));
    if (!rejected_.empty()) T = std::max<int64_t>(T, static_cast<int64_t>(rejected_[static_cast<size_t>(id)].tokens.size()));
  }
  fill(samples_, T, b.tokens, b.loss_mask, b.lengths);
  if (!rejected_.empty()) fill(rejected_, T, b.rejected_tokens, b.rejected_mask, b.rejected_lengths);
  if (!answers_.empty())
    for (int64_t id : ids) b.answers.push_back(answers_[static_cast<size_t>(id)]);
  return b;
}

void Loader::pack_rows(int64_t segment_len) {
  TORCH_CHECK(segment_len >= 1, "Loader::pack_rows: segment length must be >= 1");
  if (cfg_.format != "sft") throw ConfigError("data.pack: expected format sft, found '" + cfg_.format + "'");
  TORCH_CHECK(!worker_.joinable(), "Loader::pack_rows: call before the first batch");
  pack_segment_len_ = segment_len;
}

Batch Loader::make_packed_batch(const std::vector<int64_t>& ids) const {
  std::vector<int64_t> lengths;
  int64_t longest = 1;
  for (int64_t id : ids) {
    lengths.push_back(static_cast<int64_t>(samples_[static_cast<size_t>(id)].tokens.size()));
    longest = std::max(longest, lengths.back());
  }
  const PackPlan plan = pack_records(lengths, std::max(cfg_.seq_len, longest), pack_segment_len_);
  const int64_t R = plan.rows(), T = std::max<int64_t>(plan.length(), 1);
  Batch b;
  b.tokens = torch::full({R, T}, static_cast<int64_t>(pad_id_), torch::kInt64);  // (R, T)
  b.loss_mask = torch::zeros({R, T}, torch::kFloat32);                           // (R, T)
  b.lengths = torch::zeros({R}, torch::kInt64);                                  // (R)
  b.positions = torch::empty({R, T}, torch::kInt64);                             // (R, T)
  b.records = static_cast<int64_t>(ids.size());
  int64_t* tp = b.tokens.data_ptr<int64_t>();
  float* mp = b.loss_mask.data_ptr<float>();
  int64_t* lp = b.lengths.data_ptr<int64_t>();
  std::vector<std::vector<int64_t>> starts(static_cast<size_t>(R)), lens(static_cast<size_t>(R));
  for (size_t i = 0; i < ids.size(); ++i) {
    const Rendered& x = samples_[static_cast<size_t>(ids[i])];
    const PackedPlace& at = plan.places[i];
    std::copy(x.tokens.begin(), x.tokens.end(), tp + at.row * T + at.offset);
    std::copy(x.mask.begin(), x.mask.end(), mp + at.row * T + at.offset);
    lp[at.row] += lengths[i];
    starts[static_cast<size_t>(at.row)].push_back(at.offset);
    lens[static_cast<size_t>(at.row)].push_back(lengths[i]);
  }
  int64_t* pp = b.positions.data_ptr<int64_t>();
  for (int64_t r = 0; r < R; ++r) {
    const std::vector<int64_t> p =
        row_positions(starts[static_cast<size_t>(r)], lens[static_cast<size_t>(r)], T, pack_segment_len_);
    std::copy(p.begin(), p.end(), pp + r * T);
  }
  return b;
}

Batch Loader::next() {
  if (cfg_.prefetch <= 0) return make_batch(take_ids(pos_, order_, order_epoch_));
  if (!worker_.joinable()) start_prefetch();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || !worker_error_.empty(); });
  if (queue_.empty()) throw Error(worker_error_);
  auto item = std::move(queue_.front());
  queue_.pop_front();
  pos_ = item.second;
  lock.unlock();
  cv_.notify_all();
  return std::move(item.first);
}

void Loader::start_prefetch() {
  stop_ = false;
  worker_error_.clear();
  queue_.clear();
  producer_ = pos_;
  worker_ = std::thread([this] { prefetch_loop(); });
}

void Loader::stop_prefetch() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
  queue_.clear();
}

void Loader::prefetch_loop() {
  std::vector<int64_t> order;
  int64_t order_epoch = -1;
  try {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || static_cast<int64_t>(queue_.size()) < cfg_.prefetch; });
        if (stop_) return;
      }
      Position p = producer_;
      Batch b = make_batch(take_ids(p, order, order_epoch));
      {
        std::lock_guard<std::mutex> lock(mu_);
        producer_ = p;
        queue_.emplace_back(std::move(b), p);
      }
      cv_.notify_all();
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mu_);
    worker_error_ = e.what();
    cv_.notify_all();
  }
}

int64_t Loader::epoch() const { return pos_.epoch; }

nlohmann::json Loader::state() const {
  return {{"epoch", pos_.epoch}, {"index", pos_.index}, {"samples", num_samples_},
          {"world_size", world_},  {"seed", seed_},
          {"format", cfg_.format}};
}

void Loader::load_state(const nlohmann::json& s) {
  auto get = [&](const char* key) -> int64_t {
    if (!s.is_object() || !s.contains(key) || !s.at(key).is_number_integer())
      throw Error(fmt::format("loader state: missing integer \"{}\" in {}", key, s.dump()));
    return s.at(key).get<int64_t>();
  };
  const int64_t samples = get("samples"), world = get("world_size"), epoch = get("epoch"), index = get("index");
  if (samples != num_samples_)
    throw Error(fmt::format("loader state: saved for {} samples, but the data now has {}", samples, num_samples_));
  if (world != world_)
    spdlog::info("loader: resuming a position saved on {} rank(s) on {}: the same global sample order goes on", world,
                 world_);
  if (s.contains("seed") && s["seed"].is_number_unsigned() && s["seed"].get<uint64_t>() != seed_)
    throw Error(fmt::format("loader state: saved with seed {}, this run uses seed {}", s["seed"].get<uint64_t>(), seed_));
  if (epoch < 0 || index < 0 || index >= num_samples_)
    throw Error(fmt::format("loader state: position (epoch {}, index {}) outside an epoch of {} samples", epoch, index,
                            num_samples_));
  stop_prefetch();
  pos_ = {epoch, index};
  order_epoch_ = -1;
}

std::vector<Batch> Loader::all_batches(int64_t max_batches) const {
  std::vector<Batch> out;
  std::vector<int64_t> ids;
  const int64_t share = batch_size_ / world_;
  for (int64_t p = rank_; p < num_samples_; p += world_) {
    ids.push_back(p);
    if (static_cast<int64_t>(ids.size()) == share) {
      if (max_batches >= 0 && static_cast<int64_t>(out.size()) >= max_batches) return out;
      out.push_back(make_batch(ids));
      ids.clear();
    }
  }
  if (!ids.empty() && (max_batches < 0 || static_cast<int64_t>(out.size()) < max_batches)) out.push_back(make_batch(ids));
  return out;
}

}  // namespace infini
