// Fuzz target: record files (data/records.h): reading .jsonl, .json and .jsonl.gz, then every
// record as each kind (SFT, preference incl. HH-RLHF transcripts, PPO prompt). The file name
// follows the content: gzip magic -> .jsonl.gz, a leading '[' -> .json, else .jsonl.
// Properties: an HH-RLHF split puts prompt + response back together as the transcripts; an SFT
// record ends with an assistant turn. Not the rendering to tokens (targets_chat.cpp).
#include <string>

#include "data/records.h"
#include "tests/fuzz/targets.h"

namespace infini::fuzz {

namespace records_target {

std::string file_name(const uint8_t* data, size_t size) {
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return "records/in.jsonl.gz";
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') continue;
    return data[i] == '[' ? "records/in.json" : "records/in.jsonl";
  }
  return "records/in.jsonl";
}

// Runs one record parser; a refusal is noted in o.message.
template <class F> void parse_as(Outcome& o, const char* kind, F&& parse) {
  try {
    parse();
  } catch (const infini::Error& e) {
    if (o.message.size() < 4096) o.message += std::string(o.message.empty() ? "" : "\n") + kind + ": " + e.what();
  }
}

}  // namespace records_target

Outcome fuzz_records(const uint8_t* data, size_t size) {
  const std::string path = write_scratch(records_target::file_name(data, size), data, size);
  return guarded([&](Outcome& o) {
    const std::vector<RawRecord> records = read_record_file(path);
    o.accepted = true;
    for (size_t i = 0; i < records.size() && i < 64 && o.finding.empty(); ++i) {
      const RawRecord& r = records[i];
      records_target::parse_as(o, "sft", [&] {
        const SftRecord s = parse_sft_record(r.value, r.where);
        if (s.messages.empty() || s.messages.back().role != "assistant")
          o.finding = r.where + ": an accepted SFT record does not end with an assistant turn";
      });
      records_target::parse_as(o, "preference", [&] {
        const PreferenceRecord p = parse_preference_record(r.value, r.where);
        if (p.transcript && (p.prompt + p.chosen != r.value.at("chosen").get<std::string>() ||
                             p.prompt + p.rejected != r.value.at("rejected").get<std::string>()))
          o.finding = r.where + ": the HH-RLHF split does not put the transcripts back together";
      });
      records_target::parse_as(o, "prompt", [&] { parse_prompt_record(r.value, r.where); });
    }
  });
}

}  // namespace infini::fuzz
