// Tokenizer: a sentencepiece model (any .model file) loaded through the libinfini_spm shim.
// Not sentencepiece itself: this process never links it (docs/design.md); no chat templates here.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace infini {

class Tokenizer {
 public:
  // Throws infini::Error when the file is missing or not a sentencepiece model.
  static Tokenizer load(const std::string& model_path);

  std::vector<int> encode(const std::string& text) const;  // no BOS/EOS added
  std::string decode(const std::vector<int>& ids) const;
  std::string id_to_piece(int id) const;
  int piece_to_id(const std::string& piece) const;  // unk_id() when unknown

  int bos_id() const { return bos_; }
  int eos_id() const { return eos_; }
  int pad_id() const { return pad_; }  // falls back to eos_id() when the model defines none
  int unk_id() const { return unk_; }
  int vocab_size() const { return vocab_; }
  const std::string& path() const { return path_; }
  std::string content_hash() const { return hash_; }  // FNV-1a 64 of the .model bytes, 16 hex digits

 private:
  struct Handle;
  std::shared_ptr<Handle> h_;
  std::string path_, hash_;
  int bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1, vocab_ = 0;
};

struct TokenizerTrainOptions {
  std::vector<std::string> inputs;  // text files, one sentence per line
  int vocab_size = 8000;            // pieces in the model, byte pieces and specials included
  std::string model_prefix;         // writes PREFIX.model and PREFIX.vocab
  std::string model_type = "bpe";   // bpe | unigram
  int64_t input_sentence_size = 2000000;  // lines sampled from large inputs
  int threads = 0;                  // 0 = hardware concurrency
};

// What train_tokenizer did to the input beyond reading it.
struct TokenizerTrainReport {
  int64_t lines_cut = 0;         // lines longer than 16384 bytes (sentencepiece's limit), cut ...
  int64_t pieces_from_cuts = 0;  // ... into this many lines, at spaces where possible
  int64_t files_with_cuts = 0;   // inputs that had such lines
  int64_t invalid_utf8_bytes = 0;  // bytes that are not UTF-8 (sentencepiece reads each as U+FFFD)
  std::string first_invalid_utf8;  // "FILE:LINE:BYTE" of the first such byte
  std::vector<std::string> warnings;  // what sentencepiece warned about, as it said it
};

// Where a training run is, for a progress line (train_tokenizer calls back on its own thread, or
// on one of sentencepiece's).
struct TokenizerTrainProgress {
  bool reading = true;   // true: reading the inputs; false: sentencepiece is making pieces
  double done = 0;       // reading: bytes read; bpe: pieces merged so far; unigram: 0
  double total = 0;      // reading: bytes of all inputs; bpe: pieces to merge (0 until known); unigram: 0
  std::string step;      // what sentencepiece said it is doing ("normalizing sentences", "EM: 4537 pieces")
};
using TokenizerTrainProgressFn = std::function<void(const TokenizerTrainProgress&)>;

// Trains with SentencePieceTrainer: byte fallback (any UTF-8 round-trips), identity normalisation,
// ids unk=0 bos=1 eos=2 pad=3, digits split. The inputs are read here, line by line, and handed
// to sentencepiece; lines over its maximum length are cut, not dropped. Throws infini::Error on
// failure.
TokenizerTrainReport train_tokenizer(const TokenizerTrainOptions& opt, const TokenizerTrainProgressFn& progress = {});

// Path of libinfini_spm.so: $INFINI_SPM_LIB, else next to the executable, else its parent dir.
std::string find_spm_shim();

// FNV-1a 64 of a file's bytes as 16 hex digits (throws infini::Error when unreadable).
std::string file_hash_hex(const std::string& path);

}  // namespace infini
