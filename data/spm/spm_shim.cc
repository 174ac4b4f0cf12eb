// libinfini_spm: every sentencepiece call of the project, behind the C interface of spm_shim.h.
// Not linked into anything: data/tokenizer.cpp dlopens it (RTLD_LOCAL|RTLD_DEEPBIND), because
// libsentencepiece's private protobuf and LibTorch's protobuf crash when they share one namespace.
#include "spm_shim.h"

#include <cstdlib>
#include <cstring>
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

int infini_spm_train(const char* kwargs, char* err, int err_len) {
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
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) {
    write_err(status.ToString(), err, err_len);
    return 1;
  }
  return 0;
}

}  // extern "C"
