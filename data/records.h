// Record files (.jsonl, .json arrays, .jsonl.gz) and the record kinds the stages read from them:
// SFT, preference pairs (incl. HH-RLHF transcripts) and PPO prompts. Not their rendering to tokens.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace infini {

// One JSON value of a record file and where it came from ("file:line" or "file[element]").
struct RawRecord {
  nlohmann::json value;
  std::string where;
};

// Reads every record of a file: .jsonl / .jsonl.gz one object per non-blank line, read line by
// line; .json / .json.gz one array, read whole. Throws infini::Error for a missing file, corrupt
// gzip, malformed JSON (file:line) or a JSONL line over max_record_bytes (its length named, before
// any of it is parsed: a 50 MB record would cost gigabytes to parse and tokenize).
constexpr int64_t kDefaultMaxRecordBytes = 16 << 20;
std::vector<RawRecord> read_record_file(const std::string& path, int64_t max_record_bytes = kDefaultMaxRecordBytes);

// Whole file contents, gunzipped when the name ends in .gz (zlib gzread).
std::string read_text_file(const std::string& path);

struct Message {
  std::string role;     // system | user | assistant
  std::string content;
};

// SFT: {prompt, response} | Alpaca {instruction, input, output} | chat {messages: [{role, content}]}.
struct SftRecord {
  std::vector<Message> messages;  // ends with an assistant turn
};

// Preference: {prompt, chosen, rejected}, or HH-RLHF {chosen, rejected} whole transcripts.
struct PreferenceRecord {
  std::string prompt;            // a user message, or (transcript) the shared transcript prefix
  std::string chosen, rejected;  // the two responses
  bool transcript = false;       // prompt is an already formatted transcript: render without the template
};

// PPO prompts: {prompt} with an optional reference `answer` (string or number).
struct PromptRecord {
  std::string prompt;
  std::string answer;  // "" when none
};

// Each throws infini::Error "WHERE: ..." naming the missing field or the wrong type.
SftRecord parse_sft_record(const nlohmann::json& j, const std::string& where);
PreferenceRecord parse_preference_record(const nlohmann::json& j, const std::string& where);
PromptRecord parse_prompt_record(const nlohmann::json& j, const std::string& where);

// HH-RLHF: the prompt is the common prefix of the two transcripts up to and including its last
// "\n\nAssistant:"; the responses are what follows. False when they share no such prefix.
bool split_transcripts(const std::string& chosen, const std::string& rejected, std::string* prompt,
                       std::string* chosen_response, std::string* rejected_response);

}  // namespace infini
