// Tokenizer: resolves the libinfini_spm shim with dlopen once per process and forwards to it.
// Not sentencepiece: no header of it is included here, so LibTorch's protobuf never meets its own.
#include "data/tokenizer.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "core/error.h"
#include "data/spm/spm_shim.h"
#include "data/utf8.h"

namespace infini {
namespace {

struct ShimApi {
  decltype(&infini_spm_load) load = nullptr;
  decltype(&infini_spm_free) free = nullptr;
  decltype(&infini_spm_vocab_size) vocab_size = nullptr;
  decltype(&infini_spm_bos_id) bos_id = nullptr;
  decltype(&infini_spm_eos_id) eos_id = nullptr;
  decltype(&infini_spm_pad_id) pad_id = nullptr;
  decltype(&infini_spm_unk_id) unk_id = nullptr;
  decltype(&infini_spm_encode) encode = nullptr;
  decltype(&infini_spm_decode) decode = nullptr;
  decltype(&infini_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&infini_spm_piece_to_id) piece_to_id = nullptr;
  decltype(&infini_spm_release) release = nullptr;
  decltype(&infini_spm_train) train = nullptr;
};

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

template <class F> void resolve(void* lib, const char* name, F& fn, const std::string& path) {
  fn = reinterpret_cast<F>(::dlsym(lib, name));
  if (!fn) throw Error(fmt::format("{}: missing symbol {} (stale build of the sentencepiece shim?)", path, name));
}

// Loaded once; never unloaded (sentencepiece keeps static state that must outlive every handle).
const ShimApi& shim() {
  static std::once_flag once;
  static ShimApi api;
  static std::string failure;
  std::call_once(once, [] {
    try {
      const std::string path = find_spm_shim();
      void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (!lib) throw Error(fmt::format("cannot load the sentencepiece shim {}: {}", path, ::dlerror()));
      resolve(lib, "infini_spm_load", api.load, path);
      resolve(lib, "infini_spm_free", api.free, path);
      resolve(lib, "infini_spm_vocab_size", api.vocab_size, path);
      resolve(lib, "infini_spm_bos_id", api.bos_id, path);
      resolve(lib, "infini_spm_eos_id", api.eos_id, path);
      resolve(lib, "infini_spm_pad_id", api.pad_id, path);
      resolve(lib, "infini_spm_unk_id", api.unk_id, path);
      resolve(lib, "infini_spm_encode", api.encode, path);
      resolve(lib, "infini_spm_decode", api.decode, path);
      resolve(lib, "infini_spm_id_to_piece", api.id_to_piece, path);
      resolve(lib, "infini_spm_piece_to_id", api.piece_to_id, path);
      resolve(lib, "infini_spm_release", api.release, path);
      resolve(lib, "infini_spm_train", api.train, path);
    } catch (const Error& e) {
      failure = e.what();
    }
  });
  if (!failure.empty()) throw Error(failure);
  return api;
}

}  // namespace

struct Tokenizer::Handle {
  infini_spm* spm = nullptr;
  ~Handle() {
    if (spm) shim().free(spm);
  }
};

std::string find_spm_shim() {
  const char* env = std::getenv("INFINI_SPM_LIB");
  if (env && *env) {
    if (!file_exists(env)) throw Error(fmt::format("INFINI_SPM_LIB={}: no such file", env));
    return env;
  }
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  std::string dir = ".";
  if (n > 0) {
    std::string exe(buf, static_cast<size_t>(n));
    dir = exe.substr(0, exe.find_last_of('/'));
  }
  const std::string name = "libinfini_spm.so";
  // Installed next to the binary, or in the build root when run from <build>/tests/.
  for (const std::string& cand : {dir + "/" + name, dir + "/../" + name, dir + "/../lib/" + name}) {
    if (file_exists(cand)) return cand;
  }
  throw Error(fmt::format("cannot find {} next to the executable ({}) or in its parent; set INFINI_SPM_LIB",
                          name, dir));
}

std::string file_hash_hex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open for reading", path));
  uint64_t h = 1469598103934665603ULL;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof(buf));
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      h ^= static_cast<unsigned char>(buf[i]);
      h *= 1099511628211ULL;
    }
  }
  return fmt::format("{:016x}", h);
}

Tokenizer Tokenizer::load(const std::string& model_path) {
  if (model_path.empty()) throw Error("tokenizer: no model path given (tokenizer.model)");
  if (!file_exists(model_path)) throw Error(fmt::format("tokenizer model {}: no such file", model_path));
  const ShimApi& api = shim();
  char err[1024] = {0};
  infini_spm* spm = api.load(model_path.c_str(), err, sizeof(err));
  if (!spm) throw Error(fmt::format("tokenizer model {}: not a valid sentencepiece model ({})", model_path, err));
  Tokenizer t;
  t.h_ = std::make_shared<Handle>();
  t.h_->spm = spm;
  t.path_ = model_path;
  t.hash_ = file_hash_hex(model_path);
  t.vocab_ = api.vocab_size(spm);
  t.bos_ = api.bos_id(spm);
  t.eos_ = api.eos_id(spm);
  t.unk_ = api.unk_id(spm);
  t.pad_ = api.pad_id(spm);
  if (t.pad_ < 0) t.pad_ = t.eos_;
  if (t.bos_ < 0 || t.eos_ < 0)
    throw Error(fmt::format("tokenizer model {}: defines no BOS/EOS ids (bos={}, eos={})", model_path, t.bos_, t.eos_));
  return t;
}

std::vector<int> Tokenizer::encode(const std::string& text) const {
  int* ids = nullptr;
  const int n = shim().encode(h_->spm, text.data(), text.size(), &ids);
  if (n < 0) throw Error(fmt::format("tokenizer {}: failed to encode {} bytes of text", path_, text.size()));
  std::vector<int> out(ids, ids + n);
  shim().release(ids);
  return out;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  for (int id : ids) {
    if (id < 0 || id >= vocab_)
      throw Error(fmt::format("tokenizer {}: token id {} out of range [0, {})", path_, id, vocab_));
  }
  char* text = nullptr;
  const long n = shim().decode(h_->spm, ids.data(), static_cast<int>(ids.size()), &text);
  if (n < 0) throw Error(fmt::format("tokenizer {}: failed to decode {} ids", path_, ids.size()));
  std::string out(text, static_cast<size_t>(n));
  shim().release(text);
  return out;
}

std::string Tokenizer::id_to_piece(int id) const {
  char* p = nullptr;
  const long n = shim().id_to_piece(h_->spm, id, &p);
  if (n < 0) throw Error(fmt::format("tokenizer {}: token id {} out of range [0, {})", path_, id, vocab_));
  std::string out(p, static_cast<size_t>(n));
  shim().release(p);
  return out;
}

int Tokenizer::piece_to_id(const std::string& piece) const { return shim().piece_to_id(h_->spm, piece.c_str()); }

namespace {

// sentencepiece drops every line longer than its max_sentence_length (with a log line, nothing
// more): a book with one paragraph per line would lose most of its text. Such lines are cut at the
// last space before the limit (else at a UTF-8 character boundary).
constexpr size_t kMaxSentenceBytes = 16384;

size_t cut_point(const std::string& line, size_t from, size_t limit) {
  const size_t end = from + limit;
  const size_t space = line.rfind(' ', end - 1);
  if (space != std::string::npos && space > from + limit / 2) return space + 1;  // the space stays on the left
  size_t cut = end;
  while (cut > from + 1 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
  return cut;
}

// The input files as sentencepiece's sentences: line by line, file after file, long lines cut.
// Counts the bytes read (for the progress line) and what was cut; a read error stops the run.
class InputSentences {
 public:
  InputSentences(const std::vector<std::string>& files, TokenizerTrainReport& report) : files_(files), report_(report) {}

  // The shim's next_sentence: 1 with a sentence, 0 at the end, -1 on a read error (error()).
  int next(const char** text, size_t* len) {
    if (at_ >= line_.size() && !read_line()) return error_.empty() ? 0 : -1;
    const size_t end = line_.size() - at_ <= kMaxSentenceBytes ? line_.size() : cut_point(line_, at_, kMaxSentenceBytes);
    if (line_.size() > kMaxSentenceBytes) ++report_.pieces_from_cuts;
    *text = line_.data() + at_;
    *len = end - at_;
    at_ = end;
    ++sentences_;
    return 1;
  }
  double bytes_read() const { return bytes_; }
  int64_t sentences() const { return sentences_; }
  const std::string& error() const { return error_; }

 private:
  // The next line of the inputs into line_ (an empty line is a sentence too); false at the end.
  bool read_line() {
    while (true) {
      if (in_.is_open() && std::getline(in_, line_)) {
        bytes_ += static_cast<double>(line_.size()) + 1;
        ++line_no_;
        at_ = 0;
        size_t first = 0;
        if (const size_t bad = invalid_utf8_bytes(line_, &first); bad > 0) {
          if (report_.invalid_utf8_bytes == 0)
            report_.first_invalid_utf8 = fmt::format("{}:{}:{}", files_[file_ - 1], line_no_, first + 1);
          report_.invalid_utf8_bytes += static_cast<int64_t>(bad);
        }
        if (line_.size() > kMaxSentenceBytes) {
          ++report_.lines_cut;
          if (!file_had_cut_) ++report_.files_with_cuts;
          file_had_cut_ = true;
        }
        if (!line_.empty()) return true;
        continue;  // sentencepiece skips empty sentences; so do we
      }
      if (in_.is_open()) {
        if (in_.bad()) {
          error_ = fmt::format("tokenizer train: input {}: read failed after {} bytes", files_[file_ - 1], bytes_);
          return false;
        }
        in_.close();
      }
      if (file_ >= files_.size()) return false;
      in_.clear();
      in_.open(files_[file_++], std::ios::binary);
      file_had_cut_ = false;
      line_no_ = 0;
      if (!in_) {
        error_ = fmt::format("tokenizer train: input {}: cannot open for reading", files_[file_ - 1]);
        return false;
      }
    }
  }

  const std::vector<std::string>& files_;
  TokenizerTrainReport& report_;
  std::ifstream in_;
  size_t file_ = 0, at_ = 0;
  int64_t line_no_ = 0;
  std::string line_;
  double bytes_ = 0;
  int64_t sentences_ = 0;
  bool file_had_cut_ = false;
  std::string error_;
};

// One training run's callbacks: sentences from InputSentences, sentencepiece's log lines read for
// the progress line ("Alphabet size=59" fixes how many pieces bpe merges, "Added: ... size=N" says
// how far it is) and its warnings kept for the report.
struct TrainRun {
  InputSentences& input;
  TokenizerTrainReport& report;
  const TokenizerTrainProgressFn& progress;
  const TokenizerTrainOptions& opt;
  TokenizerTrainProgress state;
  int64_t meta_pieces = 260;  // unk, bos, eos, pad and the 256 byte pieces

  void reading() {
    if (!state.reading) return;  // sentencepiece has moved on
    state.done = input.bytes_read();
    if (progress) progress(state);
  }

  static int64_t number_after(const std::string& line, const std::string& key) {
    const size_t at = line.find(key);
    if (at == std::string::npos) return -1;
    return std::strtoll(line.c_str() + at + key.size(), nullptr, 10);
  }

  void log(std::string_view raw) {
    const std::string line(raw);
    const size_t tag = line.find("LOG(");
    const size_t close = tag == std::string::npos ? std::string::npos : line.find(") ", tag);
    if (close == std::string::npos) return;
    const std::string level = line.substr(tag + 4, close - tag - 4), text = line.substr(close + 2);
    if (level != "INFO") {
      report.warnings.push_back(text);
      return;
    }
    if (!progress) return;
    if (text.rfind("Loaded all", 0) == 0) {
      state.reading = false;
      state.done = state.total = 0;
      state.step = "normalizing sentences";
    } else if (const int64_t alphabet = number_after(text, "Alphabet size="); alphabet >= 0) {
      if (opt.model_type == "bpe") state.total = static_cast<double>(std::max<int64_t>(0, opt.vocab_size - meta_pieces - alphabet));
    } else if (text.rfind("Tokenizing input sentences", 0) == 0) {
      state.step = "splitting sentences into words";
    } else if (text.rfind("Making suffix array", 0) == 0 || text.rfind("Extracting frequent", 0) == 0) {
      state.step = "finding seed pieces";
    } else if (text.rfind("Added: ", 0) == 0) {
      state.done = static_cast<double>(number_after(text, " size="));
      state.step = "merging pieces";
    } else if (text.rfind("EM sub_iter=", 0) == 0) {
      state.step = fmt::format("EM: {} pieces, pruning to {}", number_after(text, " size="),
                               static_cast<int64_t>(opt.vocab_size * 1.1));
    } else if (text.rfind("Saving model", 0) == 0) {
      state.step = "writing the model";
    } else {
      return;
    }
    progress(state);
  }
};

}  // namespace

TokenizerTrainReport train_tokenizer(const TokenizerTrainOptions& opt, const TokenizerTrainProgressFn& progress) {
  if (opt.inputs.empty()) throw Error("tokenizer train: no --input files given");
  double total_bytes = 0;
  for (const auto& f : opt.inputs) {
    std::ifstream in(f, std::ios::binary | std::ios::ate);
    if (!in) throw Error(fmt::format("tokenizer train: input {}: cannot open for reading", f));
    total_bytes += static_cast<double>(in.tellg());
  }
  if (opt.model_type != "bpe" && opt.model_type != "unigram")
    throw Error(fmt::format("tokenizer train: --model-type must be bpe or unigram, got '{}'", opt.model_type));
  if (opt.vocab_size < 262)
    throw Error(fmt::format("tokenizer train: --vocab-size must be at least 262 (256 byte pieces + 4 specials + 2), got {}",
                            opt.vocab_size));
  if (opt.model_prefix.empty()) throw Error("tokenizer train: no --out prefix given");
  TokenizerTrainReport report;
  InputSentences input(opt.inputs, report);
  TrainRun run{input, report, progress, opt, {}};
  run.state.total = total_bytes;
  const int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string kw;
  auto add = [&](const std::string& k, const std::string& v) { kw += k + "=" + v + "\n"; };
  add("model_prefix", opt.model_prefix);
  add("vocab_size", std::to_string(opt.vocab_size));
  add("model_type", opt.model_type);
  add("byte_fallback", "true");
  add("character_coverage", "0.9995");
  add("normalization_rule_name", "identity");  // exact round trips: no NFKC, no whitespace folding
  add("remove_extra_whitespaces", "false");
  add("add_dummy_prefix", "false");  // encode(a) + encode(b) == encode(a + b) more often; rendering relies on it
  add("split_digits", "true");
  add("allow_whitespace_only_pieces", "true");
  add("unk_id", "0");
  add("bos_id", "1");
  add("eos_id", "2");
  add("pad_id", "3");
  add("input_sentence_size", std::to_string(opt.input_sentence_size));
  add("shuffle_input_sentence", "true");
  add("max_sentence_length", std::to_string(kMaxSentenceBytes));
  add("num_threads", std::to_string(threads));
  add("hard_vocab_limit", "false");
  add("minloglevel", "0");  // its INFO lines drive the progress line; none reaches the terminal
  infini_spm_train_io io{};
  io.user = &run;
  io.next_sentence = [](void* user, const char** text, size_t* len) {
    auto* r = static_cast<TrainRun*>(user);
    const int got = r->input.next(text, len);
    r->reading();
    return got;
  };
  io.log_line = [](void* user, const char* line, size_t len) {
    static_cast<TrainRun*>(user)->log(std::string_view(line, len));
  };
  char err[2048] = {0};
  const int rc = shim().train(kw.c_str(), &io, err, sizeof(err));
  if (!input.error().empty()) throw Error(input.error());
  if (input.sentences() == 0)
    throw Error(fmt::format("tokenizer train: the input ({} bytes) holds no text to train on, only empty lines",
                            static_cast<int64_t>(total_bytes)));
  if (rc != 0) throw Error(fmt::format("tokenizer train: sentencepiece failed: {}", err));
  return report;
}

}  // namespace infini
