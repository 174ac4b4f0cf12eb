// Record files and record kinds: reading JSONL/JSON(.gz), checking fields, splitting HH-RLHF.
// Not rendering (data/chat_template.cpp) and not batching (data/loader.cpp).
#include "data/records.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"

namespace infini {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string keys_of(const nlohmann::json& j) {
  if (!j.is_object()) return std::string("a JSON ") + j.type_name();
  std::string out;
  for (auto it = j.begin(); it != j.end(); ++it) out += (out.empty() ? "" : ", ") + it.key();
  return "keys [" + out + "]";
}

const std::string& get_string(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw Error(fmt::format("{}: missing field \"{}\"", where, key));
  const auto& v = j.at(key);
  if (!v.is_string())
    throw Error(fmt::format("{}: field \"{}\" must be a string, found {}", where, key, v.type_name()));
  return v.get_ref<const std::string&>();
}

void require_object(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(fmt::format("{}: a record must be a JSON object, found {}", where, j.type_name()));
}

// The lines of a file, gunzipped when it is gzip (zlib reads other files as they are), one buffer
// at a time: a line longer than the bound is read past and measured, never held.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    if (!f_) throw Error(fmt::format("{}: cannot open for reading ({})", path, std::strerror(errno)));
  }
  ~LineReader() { gzclose(f_); }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line (without its newline) into `line`; false at the end of the file. A line over
  // max_bytes is left out of `line` and its length put into *too_long (else *too_long = -1).
  bool next(std::string& line, int64_t max_bytes, int64_t* too_long) {
    line.clear();
    *too_long = -1;
    int64_t length = 0;
    bool any = false;
    for (;;) {
      if (at_ == end_ && !refill()) return any;
      any = true;
      const char* nl = static_cast<const char*>(std::memchr(buf_ + at_, '\n', end_ - at_));
      const size_t take = (nl ? static_cast<size_t>(nl - buf_) : end_) - at_;
      length += static_cast<int64_t>(take);
      if (length > max_bytes) {
        *too_long = length;
        line.clear();
      } else {
        line.append(buf_ + at_, take);
      }
      at_ += take;
      if (nl) {
        ++at_;
        return true;
      }
    }
  }

 private:
  bool refill() {
    const int n = gzread(f_, buf_, sizeof(buf_));
    int code = 0;
    const std::string msg = n <= 0 ? gzerror(f_, &code) : "";
    // gzread reports a truncated stream as a clean end; gzerror still knows.
    if (n < 0 || (n == 0 && code != Z_OK && code != Z_STREAM_END))
      throw Error(fmt::format("{}: corrupt gzip data ({})", path_, msg));
    at_ = 0;
    end_ = static_cast<size_t>(std::max(n, 0));
    return n > 0;
  }

  std::string path_;
  gzFile f_;
  char buf_[1 << 16];
  size_t at_ = 0, end_ = 0;
};

}  // namespace

std::string read_text_file(const std::string& path) {
  if (ends_with(path, ".gz")) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw Error(fmt::format("{}: cannot open for reading ({})", path, std::strerror(errno)));
    std::string out;
    char buf[1 << 16];
    for (;;) {
      const int n = gzread(f, buf, sizeof(buf));
      if (n < 0) {
        int code = 0;
        const std::string msg = gzerror(f, &code);
        gzclose(f);
        throw Error(fmt::format("{}: corrupt gzip data ({})", path, msg));
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    // gzread reports a truncated stream as a clean end; gzerror still knows.
    int code = 0;
    const std::string msg = gzerror(f, &code);
    gzclose(f);
    if (code != Z_OK && code != Z_STREAM_END) throw Error(fmt::format("{}: corrupt gzip data ({})", path, msg));
    return out;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open for reading ({})", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(fmt::format("{}: read error", path));
  return ss.str();
}

std::vector<RawRecord> read_record_file(const std::string& path, int64_t max_record_bytes) {
  const bool jsonl = ends_with(path, ".jsonl") || ends_with(path, ".jsonl.gz");
  const bool json = ends_with(path, ".json") || ends_with(path, ".json.gz");
  if (!jsonl && !json)
    throw Error(fmt::format("{}: unsupported record file (expected .jsonl, .jsonl.gz, .json or .json.gz)", path));
  std::vector<RawRecord> out;
  if (jsonl) {
    if (!std::ifstream(path)) throw Error(fmt::format("{}: cannot open for reading ({})", path, std::strerror(errno)));
    LineReader in(path);
    std::string line;
    int64_t too_long = -1;
    for (int64_t line_no = 1; in.next(line, max_record_bytes, &too_long); ++line_no) {
      if (too_long >= 0)
        throw Error(fmt::format("{}:{}: a record of {} bytes, more than data.max_record_bytes = {}: split it, or raise "
                                "the bound if it is meant to be one record",
                                path, line_no, too_long, max_record_bytes));
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = fmt::format("{}:{}", path, line_no);
      try {
        out.push_back({nlohmann::json::parse(line), where});
      } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number too large
        throw Error(fmt::format("{}: malformed JSON: {}", where, e.what()));
      }
    }
    return out;
  }
  const std::string text = read_text_file(path);
  nlohmann::json arr;
  try {
    arr = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // byte offset -> line, so the message points into the file
    const size_t at = std::min(text.size(), static_cast<size_t>(e.byte));
    const int64_t line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
    throw Error(fmt::format("{}:{}: malformed JSON: {}", path, line, e.what()));
  } catch (const nlohmann::json::exception& e) {  // out_of_range: a number too large for a double
    throw Error(fmt::format("{}: malformed JSON: {}", path, e.what()));
  }
  if (!arr.is_array()) throw Error(fmt::format("{}: a .json record file must hold an array, found {}", path, arr.type_name()));
  out.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) out.push_back({std::move(arr[i]), fmt::format("{}[element {}]", path, i)});
  return out;
}

SftRecord parse_sft_record(const nlohmann::json& j, const std::string& where) {
  require_object(j, where);
  SftRecord r;
  if (j.contains("messages")) {
    const auto& m = j.at("messages");
    if (!m.is_array()) throw Error(fmt::format("{}: field \"messages\" must be an array, found {}", where, m.type_name()));
    for (size_t i = 0; i < m.size(); ++i) {
      const std::string w = fmt::format("{} messages[{}]", where, i);
      require_object(m[i], w);
      Message msg{get_string(m[i], "role", w), get_string(m[i], "content", w)};
      if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
        throw Error(fmt::format("{}: field \"role\" must be system, user or assistant, found \"{}\"", w, msg.role));
      r.messages.push_back(std::move(msg));
    }
    if (r.messages.empty() || r.messages.back().role != "assistant")
      throw Error(fmt::format("{}: field \"messages\" must end with an assistant turn", where));
  } else if (j.contains("instruction")) {
    std::string user = get_string(j, "instruction", where);
    if (j.contains("input")) {
      const std::string& input = get_string(j, "input", where);
      if (!input.empty()) user += "\n\n" + input;
    }
    r.messages = {{"user", user}, {"assistant", get_string(j, "output", where)}};
  } else if (j.contains("prompt")) {
    r.messages = {{"user", get_string(j, "prompt", where)}, {"assistant", get_string(j, "response", where)}};
  } else {
    throw Error(fmt::format("{}: an SFT record needs {{prompt, response}}, {{instruction, input, output}} or "
                            "{{messages}}; found {}", where, keys_of(j)));
  }
  return r;
}

bool split_transcripts(const std::string& chosen, const std::string& rejected, std::string* prompt,
                       std::string* chosen_response, std::string* rejected_response) {
  static const std::string kAssistant = "\n\nAssistant:";
  size_t common = 0;
  while (common < chosen.size() && common < rejected.size() && chosen[common] == rejected[common]) ++common;
  // The last marker that lies wholly inside the shared prefix.
  if (common < kAssistant.size()) return false;
  const size_t at = chosen.rfind(kAssistant, common - kAssistant.size());
  if (at == std::string::npos) return false;
  const size_t cut = at + kAssistant.size();
  *prompt = chosen.substr(0, cut);
  *chosen_response = chosen.substr(cut);
  *rejected_response = rejected.substr(cut);
  return true;
}

PreferenceRecord parse_preference_record(const nlohmann::json& j, const std::string& where) {
  require_object(j, where);
  PreferenceRecord r;
  if (!j.contains("chosen") || !j.contains("rejected"))
    throw Error(fmt::format("{}: a preference record needs {{prompt, chosen, rejected}} or HH-RLHF {{chosen, rejected}}; "
                            "found {}", where, keys_of(j)));
  const std::string& chosen = get_string(j, "chosen", where);
  const std::string& rejected = get_string(j, "rejected", where);
  if (j.contains("prompt")) {
    r.prompt = get_string(j, "prompt", where);
    r.chosen = chosen;
    r.rejected = rejected;
    return r;
  }
  if (!split_transcripts(chosen, rejected, &r.prompt, &r.chosen, &r.rejected))
    throw Error(fmt::format("{}: HH-RLHF record: \"chosen\" and \"rejected\" share no prefix ending in "
                            "\"\\n\\nAssistant:\"", where));
  r.transcript = true;
  return r;
}

PromptRecord parse_prompt_record(const nlohmann::json& j, const std::string& where) {
  require_object(j, where);
  PromptRecord r;
  r.prompt = get_string(j, "prompt", where);
  if (j.contains("answer")) {
    const auto& a = j.at("answer");
    if (a.is_string()) r.answer = a.get<std::string>();
    else if (a.is_number()) r.answer = a.dump();
    else if (!a.is_null())
      throw Error(fmt::format("{}: field \"answer\" must be a string or a number, found {}", where, a.type_name()));
  }
  return r;
}

}  // namespace infini
