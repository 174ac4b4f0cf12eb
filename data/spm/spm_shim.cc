// libinfini_spm: every sentencepiece call of the project, behind the C interface of spm_shim.h.
// Not linked into anything: data/tokenizer.cpp dlopens it (RTLD_LOCAL|RTLD_DEEPBIND), because
// libsentencepiece's private protobuf and LibTorch's protobuf crash when they share one namespace.
#include "spm_shim.h"

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <streambuf>
#include <string>
#include <unordered_map>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

struct infini_spm {
  sentencepiece::SentencePieceProcessor sp;
};

namespace {

void write_err(const std::string& msg, char* err, int err_len) {
  if (!err || err_len <= 0) return;
  std::strncpy(err, msg.c_str(), static_cast<size_t>(err_len) - 1);
  err[err_len - 1] = '\0';
}

template <class T> T* copy_out(const T* src, size_t n) {
  T* out = static_cast<T*>(std::malloc(n * sizeof(T) + 1));
  if (n) std::memcpy(out, src, n * sizeof(T));
  return out;
}

// The caller's sentences as sentencepiece's iterator: value() holds the current one until Next().
class CallbackSentences : public sentencepiece::SentenceIterator {
 public:
  explicit CallbackSentences(const infini_spm_train_io& io) : io_(io) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    if (done_) return;
    const char* text = nullptr;
    size_t len = 0;
    const int r = io_.next_sentence(io_.user, &text, &len);
    if (r == 1) {
      value_.assign(text, len);
      return;
    }
    done_ = true;
    if (r < 0) failed_ = true;
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override {
    if (failed_) return sentencepiece::util::Status(sentencepiece::util::StatusCode::kInternal, "reading the input failed");
    return sentencepiece::util::Status();
  }

 private:
  const infini_spm_train_io& io_;
  std::string value_;
  bool done_ = false, failed_ = false;
};

// sentencepiece logs to std::cerr: while a training run lasts, whole lines go to log_line instead.
class LogLines : public std::streambuf {
 public:
  explicit LogLines(const infini_spm_train_io& io) : io_(io), saved_(std::cerr.rdbuf(this)) {}
  ~LogLines() override {
    std::cerr.rdbuf(saved_);
    if (!line_.empty()) io_.log_line(io_.user, line_.data(), line_.size());
  }

 protected:
  int overflow(int c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    const char ch = static_cast<char>(c);
    xsputn(&ch, 1);
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::streamsize i = 0; i < n; ++i) {
      if (s[i] != '\n') {
        line_ += s[i];
        continue;
      }
      io_.log_line(io_.user, line_.data(), line_.size());
      line_.clear();
    }
    return n;
  }

 private:
  const infini_spm_train_io& io_;
  std::streambuf* saved_;
  std::string line_;
  std::mutex mu_;
};

}  // namespace

extern "C" {

infini_spm* infini_spm_load(const char* path, char* err, int err_len) {
  auto* h = new infini_spm;
  const auto status = h->sp.Load(path);
  if (!status.ok()) {
    write_err(status.ToString(), err, err_len);
    delete h;
    return nullptr;
  }
  return h;
}

void infini_spm_free(infini_spm* h) { delete h; }

int infini_spm_vocab_size(const infini_spm* h) { return h->sp.GetPieceSize(); }
int infini_spm_bos_id(const infini_spm* h) { return h->sp.bos_id(); }
int infini_spm_eos_id(const infini_spm* h) { return h->sp.eos_id(); }
int infini_spm_pad_id(const infini_spm* h) { return h->sp.pad_id(); }
int infini_spm_unk_id(const infini_spm* h) { return h->sp.unk_id(); }

int infini_spm_encode(const infini_spm* h, const char* text, size_t len, int** ids) {
  std::vector<int> out;
  if (!h->sp.Encode(absl::string_view(text, len), &out).ok()) return -1;
  *ids = copy_out(out.data(), out.size());
  return static_cast<int>(out.size());
}

long infini_spm_decode(const infini_spm* h, const int* ids, int n, char** text) {
  std::string out;
  if (!h->sp.Decode(std::vector<int>(ids, ids + n), &out).ok()) return -1;
  *text = copy_out(out.data(), out.size());
  return static_cast<long>(out.size());
}

long infini_spm_id_to_piece(const infini_spm* h, int id, char** piece) {
  if (id < 0 || id >= h->sp.GetPieceSize()) return -1;
  const std::string& p = h->sp.IdToPiece(id);
  *piece = copy_out(p.data(), p.size());
  return static_cast<long>(p.size());
}

int infini_spm_piece_to_id(const infini_spm* h, const char* piece) { return h->sp.PieceToId(piece); }

void infini_spm_release(void* p) { std::free(p); }

int infini_spm_train(const char* kwargs, const infini_spm_train_io* io, char* err, int err_len) {
  std::unordered_map<std::string, std::string> args;
  const std::string all(kwargs);
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\n', start);
    if (end == std::string::npos) end = all.size();
    const std::string line = all.substr(start, end - start);
    const size_t eq = line.find('=');
    if (eq != std::string::npos) args[line.substr(0, eq)] = line.substr(eq + 1);
    start = end + 1;
  }
  CallbackSentences sentences(*io);
  sentencepiece::util::Status status;
  {
    LogLines logs(*io);
    status = sentencepiece::SentencePieceTrainer::Train(args, &sentences);
  }
  if (!status.ok()) {
    write_err(status.ToString(), err, err_len);
    return 1;
  }
  return 0;
}

}  // extern "C"
