// Corpus preparation: streams text files, tokenizes chunks of documents on a thread pool and
// writes them in input order into train/val token shards. Not the shard format itself.
#include "data/prepare.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/token_shards.h"
#include "data/tokenizer.h"
#include "data/utf8.h"

namespace infini {
namespace {

constexpr size_t kChunkBytes = 256 << 10;  // documents handed to one worker at a time (small: balance)

struct Chunk {
  int64_t seq = 0;
  std::vector<std::string> docs;
};

// Tokenizes chunks on N threads; results are taken back strictly in submission order.
class OrderedEncoder {
 public:
  OrderedEncoder(const Tokenizer& tok, int threads) : tok_(tok) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~OrderedEncoder() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_jobs_.notify_all();
    for (auto& t : workers_) t.join();
  }
  void submit(Chunk c) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(c));
    }
    cv_jobs_.notify_one();
  }
  // Blocks until chunk `seq` is encoded; rethrows a worker's error.
  std::vector<std::vector<int>> take(int64_t seq) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_done_.wait(lock, [&] { return done_.count(seq) || !error_.empty(); });
    if (!error_.empty()) throw Error(error_);
    auto out = std::move(done_[seq]);
    done_.erase(seq);
    return out;
  }

 private:
  void work() {
    for (;;) {
      Chunk c;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_jobs_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (stop_) return;
        c = std::move(jobs_.front());
        jobs_.pop_front();
      }
      std::vector<std::vector<int>> ids;
      std::string err;
      try {
        ids.reserve(c.docs.size());
        for (const auto& d : c.docs) ids.push_back(tok_.encode(d));
      } catch (const std::exception& e) {
        err = e.what();
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!err.empty()) error_ = err;
        done_[c.seq] = std::move(ids);
      }
      cv_done_.notify_all();
    }
  }

  const Tokenizer& tok_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_jobs_, cv_done_;
  std::deque<Chunk> jobs_;
  std::map<int64_t, std::vector<std::vector<int>>> done_;
  std::string error_;
  bool stop_ = false;
};

// One split's shard files, rolled over at shard_tokens.
class SplitWriter {
 public:
  SplitWriter(std::string dir, std::string name, int64_t vocab, int64_t shard_tokens)
      : dir_(std::move(dir)), name_(std::move(name)), vocab_(vocab), shard_tokens_(shard_tokens) {}
  void add_document(const std::vector<int>& ids, int eos) {
    const int64_t n = static_cast<int64_t>(ids.size()) + 1;
    if (!w_ || (w_->num_tokens() > 0 && w_->num_tokens() + n > shard_tokens_)) roll();
    w_->append(ids.data(), ids.size());
    w_->append(&eos, 1);
    ++docs_in_shard_;
    ++documents_;
    tokens_ += n;
  }
  nlohmann::json finish() {
    if (w_) close_current();
    return files_;
  }
  int64_t documents() const { return documents_; }
  int64_t tokens() const { return tokens_; }

 private:
  void roll() {
    if (w_) close_current();
    const std::string file = fmt::format("{}_{:05d}.bin", name_, files_.size());
    w_ = std::make_unique<ShardWriter>(dir_ + "/" + file, vocab_);
    current_file_ = file;
    docs_in_shard_ = 0;
  }
  void close_current() {
    w_->finish();
    files_.push_back({{"file", current_file_}, {"tokens", w_->num_tokens()}, {"documents", docs_in_shard_}});
    w_.reset();
  }
  std::string dir_, name_, current_file_;
  int64_t vocab_, shard_tokens_;
  std::unique_ptr<ShardWriter> w_;
  nlohmann::json files_ = nlohmann::json::array();
  int64_t docs_in_shard_ = 0, documents_ = 0, tokens_ = 0;
};

}  // namespace

bool is_val_document(int64_t i, double f) {
  if (f <= 0) return false;
  return std::floor(static_cast<double>(i + 1) * f + 0.5) > std::floor(static_cast<double>(i) * f + 0.5);
}

namespace {

void check_inputs(const PrepareOptions& opt) {
  if (opt.inputs.empty()) throw Error("data prepare: no --input files given");
  if (opt.val_fraction < 0 || opt.val_fraction >= 1)
    throw Error(fmt::format("data prepare: --val-fraction must be in [0, 1), got {}", opt.val_fraction));
  for (const auto& f : opt.inputs) {
    std::ifstream in(f);
    if (!in) throw Error(fmt::format("data prepare: input {}: cannot open for reading", f));
  }
  std::error_code ec;
  std::filesystem::create_directories(opt.out_dir, ec);
  if (ec) throw Error(fmt::format("data prepare: cannot create {}: {}", opt.out_dir, ec.message()));
}

// OUT/index.json: what the shards hold and how they were made (written last, atomically).
void write_index(const Tokenizer& tok, const PrepareOptions& opt, SplitWriter& train, SplitWriter& val,
                 PrepareStats& st) {
  nlohmann::json index = {{"format", "infini-token-shards"},
                          {"version", 1},
                          {"vocab_size", tok.vocab_size()},
                          {"bos_id", tok.bos_id()},
                          {"eos_id", tok.eos_id()},
                          {"tokenizer", tok.path()},
                          {"tokenizer_hash", tok.content_hash()},
                          {"inputs", opt.inputs},
                          {"val_fraction", opt.val_fraction},
                          {"document", "blocks of lines between blank lines, at most 65536 bytes; joined with EOS"}};
  index["train"] = train.finish();
  index["val"] = val.finish();
  st.train_documents = train.documents();
  st.val_documents = val.documents();
  st.train_tokens = train.tokens();
  st.val_tokens = val.tokens();
  index["documents"] = {{"train", st.train_documents}, {"val", st.val_documents}};
  index["tokens"] = {{"train", st.train_tokens}, {"val", st.val_tokens}};
  index["bytes"] = st.bytes;
  if (!st.invalid_utf8.empty()) {
    nlohmann::json bad = nlohmann::json::object();
    for (const auto& b : st.invalid_utf8) bad[b.file] = b.bytes;
    index["invalid_utf8_bytes"] = bad;  // each tokenized as U+FFFD
  }
  const std::string path = opt.out_dir + "/index.json";
  {
    std::ofstream out(path + ".tmp");
    out << index.dump(2) << "\n";
    if (!out) throw Error(fmt::format("data prepare: cannot write {}", path));
  }
  std::error_code ec;
  std::filesystem::rename(path + ".tmp", path, ec);
  if (ec) throw Error(fmt::format("data prepare: cannot write {}: {}", path, ec.message()));
}

}  // namespace

PrepareStats prepare_corpus(const Tokenizer& tok, const PrepareOptions& opt) {
  check_inputs(opt);
  const auto t0 = std::chrono::steady_clock::now();
  const int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int64_t total_bytes = 0;
  for (const auto& f : opt.inputs) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(f, ec);
    if (!ec) total_bytes += static_cast<int64_t>(n);
  }
  PrepareStats st;
  SplitWriter train(opt.out_dir, "train", tok.vocab_size(), opt.shard_tokens);
  SplitWriter val(opt.out_dir, "val", tok.vocab_size(), opt.shard_tokens);
  int64_t doc_index = 0;
  {
    OrderedEncoder enc(tok, threads);
    int64_t next_submit = 0, next_write = 0;
    Chunk chunk;
    size_t chunk_bytes = 0;
    auto write_one = [&] {
      auto ids = enc.take(next_write++);
      for (const auto& d : ids) {
        if (is_val_document(doc_index, opt.val_fraction)) val.add_document(d, tok.eos_id());
        else train.add_document(d, tok.eos_id());
        ++doc_index;
      }
    };
    auto submit = [&] {
      if (chunk.docs.empty()) return;
      chunk.seq = next_submit++;
      enc.submit(std::move(chunk));
      chunk = Chunk();
      chunk_bytes = 0;
      while (next_submit - next_write > 2 * threads) write_one();  // bounded memory
      if (opt.on_progress) opt.on_progress(st.bytes, total_bytes);
    };
    auto emit = [&](const std::string& doc) {
      chunk_bytes += doc.size();
      chunk.docs.push_back(doc);
      if (chunk_bytes >= kChunkBytes) submit();
    };
    for (const auto& f : opt.inputs) {
      std::ifstream in(f, std::ios::binary);
      DocumentSplitter split;
      std::string line;
      InvalidUtf8 bad{f};
      for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
        st.bytes += static_cast<int64_t>(line.size()) + 1;
        size_t first = 0;
        if (const size_t n = invalid_utf8_bytes(line, &first); n > 0) {
          if (bad.bytes == 0) {
            bad.first_line = line_no;
            bad.first_byte = static_cast<int64_t>(first) + 1;
          }
          bad.bytes += static_cast<int64_t>(n);
        }
        split.feed_line(line, emit);
      }
      if (bad.bytes > 0) st.invalid_utf8.push_back(bad);
      if (in.bad()) throw Error(fmt::format("data prepare: input {}: read error", f));
      split.flush(emit);  // documents never span two files
    }
    submit();
    while (next_write < next_submit) write_one();
  }
  if (doc_index == 0) throw Error("data prepare: the inputs hold no documents (empty or blank files)");

  st.documents = doc_index;
  write_index(tok, opt, train, val, st);
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

}  // namespace infini
