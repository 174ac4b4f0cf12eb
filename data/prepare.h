// Corpus preparation: text files -> token shards + index.json (the `infini data prepare` command).
// Not the shard format (data/token_shards.h) and not the loader.
//
// A document is a block of lines between blank lines (a paragraph, a chapter), capped at
// kMaxDocumentBytes: a longer block (e.g. a file with no blank lines at all) is cut at line
// boundaries into several documents. Documents are joined with EOS. The split is by document
// index: with fraction f, document i goes to val when floor((i+1)f + 1/2) > floor(i f + 1/2), so
// about f of the documents, evenly spread, the same on every run and for any thread count.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace infini {

class Tokenizer;

constexpr size_t kMaxDocumentBytes = 64 * 1024;

struct PrepareOptions {
  std::vector<std::string> inputs;  // UTF-8 text files
  std::string out_dir;              // created if missing; holds index.json and *.bin
  double val_fraction = 0.005;      // share of documents held out for validation
  int threads = 0;                  // 0 = hardware concurrency
  int64_t shard_tokens = 1 << 26;   // tokens per shard file at most
  // Called after every chunk of text read (about kChunkBytes) with the bytes read so far and the
  // inputs' total size; the command draws the progress line (train/run/progress.h).
  std::function<void(int64_t read, int64_t total)> on_progress;
};

// Bytes of one input that are not UTF-8 (each is tokenized as U+FFFD, the replacement character).
struct InvalidUtf8 {
  std::string file;
  int64_t bytes = 0;                   // how many
  int64_t first_line = 0, first_byte = 0;  // where the first is: line (from 1), byte in it (from 1)
};

struct PrepareStats {
  int64_t documents = 0, train_documents = 0, val_documents = 0;
  int64_t train_tokens = 0, val_tokens = 0;  // EOS separators included
  int64_t bytes = 0;                         // text bytes read
  double seconds = 0;
  std::vector<InvalidUtf8> invalid_utf8;     // the inputs that have such bytes (also in index.json)
};

// Splits a stream of lines into documents (exposed for tests). Calls emit(doc) per document.
class DocumentSplitter {
 public:
  template <class F> void feed_line(const std::string& line, F&& emit) {
    const bool blank = line.find_first_not_of(" \t\r") == std::string::npos;
    if (blank) {
      flush(emit);
      return;
    }
    if (!doc_.empty() && doc_.size() + 1 + line.size() > kMaxDocumentBytes) flush(emit);
    if (line.size() > kMaxDocumentBytes) {  // one giant line: cut it at UTF-8 character starts
      size_t pos = 0;
      while (pos < line.size()) {
        size_t end = std::min(line.size(), pos + kMaxDocumentBytes);
        while (end < line.size() && end > pos && (static_cast<unsigned char>(line[end]) & 0xC0) == 0x80) --end;
        emit(line.substr(pos, end - pos));
        pos = end;
      }
      return;
    }
    if (!doc_.empty()) doc_ += '\n';
    doc_ += line;
  }
  template <class F> void flush(F&& emit) {
    if (!doc_.empty()) emit(doc_);
    doc_.clear();
  }

 private:
  std::string doc_;
};

// True when document i goes to the validation split.
bool is_val_document(int64_t i, double val_fraction);

PrepareStats prepare_corpus(const Tokenizer& tok, const PrepareOptions& opt);

}  // namespace infini
