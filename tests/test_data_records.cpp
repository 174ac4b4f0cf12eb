// Tests of record files and rendering: every record kind's loss mask position by position, the
// HH-RLHF prompt split (hand-written and the real files), truncation, and every bad-input case.
#include <gtest/gtest.h>

#include <zlib.h>

#include <filesystem>

#include "core/error.h"
#include "data/chat_template.h"
#include "data/loader.h"
#include "data/records.h"
#include "data/tokenizer.h"
#include "tests/test_data_util.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_data_records {

using namespace infini;
using infini::testing::scratch_dir;
using infini::testing::tiny_tokenizer;
using infini::testing::write_file;

namespace {

const Tokenizer& tok() { return tiny_tokenizer("data_records"); }

void expect_error_contains(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected infini::Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "multi-line error: " << e.what();
  }
}

void write_gz(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
}

std::vector<int> cat(std::vector<std::vector<int>> parts) {
  std::vector<int> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// The expected (tokens, mask) from the documented layout: [BOS] prompt-part response-part [EOS].
void expect_layout(const Rendered& r, const std::vector<int>& prompt, const std::vector<int>& response, bool eos = true) {
  std::vector<int> want = cat({{tok().bos_id()}, prompt, response});
  if (eos) want.push_back(tok().eos_id());
  ASSERT_EQ(r.tokens, want);
  ASSERT_EQ(r.mask.size(), want.size());
  for (size_t t = 0; t < want.size(); ++t) {
    const bool target = t >= 1 + prompt.size();
    EXPECT_EQ(r.mask[t], target ? 1.f : 0.f) << "position " << t;
  }
}

ChatTemplate chat() { return ChatTemplate(); }

}  // namespace

TEST(Render, SftPromptResponse) {
  const SftRecord r = parse_sft_record(nlohmann::json::parse(R"({"prompt": "What is 2 + 3?", "response": "5"})"), "x:1");
  const Rendered out = render_sft(tok(), chat(), r);
  expect_layout(out, tok().encode("### User:\nWhat is 2 + 3?\n\n### Assistant:\n"), tok().encode("5"));
  // mask by hand: BOS and prompt 0, then "5" and EOS 1
  const size_t n = out.tokens.size();
  EXPECT_EQ(out.mask[n - 1], 1.f);
  EXPECT_EQ(out.mask[n - 2], 1.f);
  EXPECT_EQ(out.mask[n - 3], 0.f);
  EXPECT_EQ(tok().decode(std::vector<int>(out.tokens.begin() + 1, out.tokens.end() - 1)),
            "### User:\nWhat is 2 + 3?\n\n### Assistant:\n5");
}

TEST(Render, SftAlpacaWithAndWithoutInput) {
  auto r = parse_sft_record(nlohmann::json::parse(R"({"instruction": "Sort these", "input": "b a", "output": "a b"})"), "x:1");
  expect_layout(render_sft(tok(), chat(), r), tok().encode("### User:\nSort these\n\nb a\n\n### Assistant:\n"), tok().encode("a b"));
  r = parse_sft_record(nlohmann::json::parse(R"({"instruction": "Say hi", "input": "", "output": "hi"})"), "x:2");
  expect_layout(render_sft(tok(), chat(), r), tok().encode("### User:\nSay hi\n\n### Assistant:\n"), tok().encode("hi"));
}

TEST(Render, ChatMessagesMaskEveryAssistantTurn) {
  ChatTemplate c;
  c.system_prefix = "S: ";
  c.user_prefix = "U: ";
  c.assistant_prefix = "A: ";
  c.turn_end = "\n";
  const auto r = parse_sft_record(nlohmann::json::parse(R"({"messages": [
      {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
      {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"},
      {"role": "assistant", "content": "see you"}]})"), "x:1");
  const Rendered out = render_sft(tok(), c, r);
  const auto p1 = tok().encode("S: be brief\nU: hi\nA: "), a1 = tok().encode("hello\n");
  const auto p2 = tok().encode("U: bye\nA: "), a2 = tok().encode("see you");
  ASSERT_EQ(out.tokens, cat({{1}, p1, a1, p2, a2, {2}}));
  std::vector<float> want;
  want.push_back(0.f);
  want.insert(want.end(), p1.size(), 0.f);
  want.insert(want.end(), a1.size(), 1.f);
  want.insert(want.end(), p2.size(), 0.f);
  want.insert(want.end(), a2.size(), 1.f);
  want.push_back(1.f);
  EXPECT_EQ(out.mask, want);
}

TEST(Render, PreferenceAndPrompts) {
  const auto p = parse_preference_record(nlohmann::json::parse(R"({"prompt": "2+2?", "chosen": "4", "rejected": "5"})"), "x:1");
  EXPECT_FALSE(p.transcript);
  const auto prompt_ids = tok().encode("### User:\n2+2?\n\n### Assistant:\n");
  expect_layout(render_preference(tok(), chat(), p, p.chosen), prompt_ids, tok().encode("4"));
  expect_layout(render_preference(tok(), chat(), p, p.rejected), prompt_ids, tok().encode("5"));
  const auto q = parse_prompt_record(nlohmann::json::parse(R"({"prompt": "2+2?", "answer": 4})"), "x:1");
  EXPECT_EQ(q.answer, "4");
  const Rendered pr = render_prompt(tok(), chat(), q.prompt);
  expect_layout(pr, prompt_ids, {}, false);
}

TEST(Render, HHTranscriptSplit) {
  const std::string chosen = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit\n\nAssistant: An apple.";
  const std::string rejected = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit\n\nAssistant: A rock.";
  const auto r = parse_preference_record({{"chosen", chosen}, {"rejected", rejected}}, "x:1");
  EXPECT_TRUE(r.transcript);
  EXPECT_EQ(r.prompt, "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit\n\nAssistant:");
  EXPECT_EQ(r.chosen, " An apple.");
  EXPECT_EQ(r.rejected, " A rock.");
  // responses that share their first words: the split stays at the last marker of the common prefix
  std::string p, c, j;
  ASSERT_TRUE(split_transcripts("\n\nHuman: Q\n\nAssistant: The answer is yes", "\n\nHuman: Q\n\nAssistant: The answer is no", &p, &c, &j));
  EXPECT_EQ(p, "\n\nHuman: Q\n\nAssistant:");
  EXPECT_EQ(c, " The answer is yes");
  EXPECT_EQ(j, " The answer is no");
  // a marker only partly shared does not count
  EXPECT_FALSE(split_transcripts("\n\nHuman: Q\n\nAssis", "\n\nHuman: Q\n\nAsk", &p, &c, &j));
  // rendering a transcript uses no template
  const Rendered out = render_preference(tok(), chat(), r, r.chosen);
  expect_layout(out, tok().encode(r.prompt), tok().encode(" An apple."));
}

TEST(Render, HHRealFiles) {
  const std::string path = std::string(INFINI_SOURCE_DIR) + "/../shared/data/preference/helpful-base-test.jsonl.gz";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
  const auto raw = read_record_file(path);
  EXPECT_EQ(raw.size(), 2354u);
  for (const auto& rr : raw) {
    const auto r = parse_preference_record(rr.value, rr.where);
    ASSERT_TRUE(r.transcript);
    const std::string suffix = "\n\nAssistant:";
    ASSERT_GE(r.prompt.size(), suffix.size());
    EXPECT_EQ(r.prompt.substr(r.prompt.size() - suffix.size()), suffix) << rr.where;
    EXPECT_EQ(r.prompt + r.chosen, rr.value["chosen"].get<std::string>());
    EXPECT_EQ(r.prompt + r.rejected, rr.value["rejected"].get<std::string>());
    // the responses are the final turn: no further Human turn in either
    EXPECT_EQ(r.chosen.find("\n\nHuman:"), std::string::npos) << rr.where;
  }
}

TEST(Render, Truncation) {
  Rendered r;
  r.tokens = {1, 10, 11, 12, 13, 14, 2};
  r.mask = {0, 0, 0, 1, 1, 1, 1};
  Rendered a = r;
  EXPECT_EQ(truncate_rendered(a, 5, "right", true), TruncateOutcome::truncated);
  EXPECT_EQ(a.tokens, (std::vector<int>{1, 10, 11, 12, 13}));
  EXPECT_EQ(a.mask, (std::vector<float>{0, 0, 0, 1, 1}));
  Rendered b = r;
  EXPECT_EQ(truncate_rendered(b, 5, "left", true), TruncateOutcome::truncated);
  EXPECT_EQ(b.tokens, (std::vector<int>{1, 12, 13, 14, 2}));
  EXPECT_EQ(b.mask, (std::vector<float>{0, 1, 1, 1, 1}));
  Rendered c = r;
  EXPECT_EQ(truncate_rendered(c, 5, "drop", true), TruncateOutcome::dropped);
  Rendered d = r;
  EXPECT_EQ(truncate_rendered(d, 3, "right", true), TruncateOutcome::dropped);  // no target left
  Rendered e = r;
  EXPECT_EQ(truncate_rendered(e, 7, "right", true), TruncateOutcome::kept);
}

TEST(Records, FileFormats) {
  const std::string dir = scratch_dir("data_records_formats");
  const std::string lines = "{\"prompt\": \"a\", \"response\": \"b\"}\n\n{\"prompt\": \"c\", \"response\": \"d\"}\n";
  write_file(dir + "/r.jsonl", lines);
  write_gz(dir + "/r.jsonl.gz", lines);
  write_file(dir + "/r.json", "[{\"prompt\": \"a\", \"response\": \"b\"},\n {\"prompt\": \"c\", \"response\": \"d\"}]");
  for (const char* f : {"/r.jsonl", "/r.jsonl.gz", "/r.json"}) {
    const auto recs = read_record_file(dir + f);
    ASSERT_EQ(recs.size(), 2u) << f;
    EXPECT_EQ(recs[1].value["response"], "d");
  }
  EXPECT_EQ(read_record_file(dir + "/r.jsonl")[1].where, dir + "/r.jsonl:3");
}

// JSONL is read line by line: a record longer than the read buffer (64 KiB) comes back whole, one
// of exactly max_record_bytes is read, one byte more is refused with its length and line before
// any of it is parsed (plain and gzip alike); the loader takes the bound from data.max_record_bytes.
TEST(Records, OneRecordsSizeIsBounded) {
  const std::string dir = scratch_dir("data_records_bound");
  const std::string big = "{\"prompt\": \"" + std::string(200000, 'q') + "\", \"response\": \"b\"}";
  const std::string small = "{\"prompt\": \"a\", \"response\": \"b\"}";
  write_file(dir + "/r.jsonl", small + "\n" + big + "\n" + small);  // no newline at the end
  write_gz(dir + "/r.jsonl.gz", small + "\n" + big + "\n" + small);
  for (const char* f : {"/r.jsonl", "/r.jsonl.gz"}) {
    const auto recs = read_record_file(dir + f);
    ASSERT_EQ(recs.size(), 3u) << f;
    EXPECT_EQ(recs[1].value["prompt"].get<std::string>().size(), 200000u) << f;
    EXPECT_EQ(recs[2].where, dir + f + ":3");
    EXPECT_EQ(read_record_file(dir + f, static_cast<int64_t>(big.size())).size(), 3u) << f;
    expect_error_contains([&] { read_record_file(dir + f, static_cast<int64_t>(big.size()) - 1); },
                          dir + f + ":2: a record of " + std::to_string(big.size()) +
                              " bytes, more than data.max_record_bytes = " + std::to_string(big.size() - 1));
  }
  DataConfig cfg;
  cfg.format = "sft";
  cfg.seq_len = 64;
  cfg.train = {dir + "/r.jsonl"};
  cfg.max_record_bytes = 1000;
  expect_error_contains([&] { Loader l(cfg, Split::train, &tok(), 2, 0); },
                        "r.jsonl:2: a record of " + std::to_string(big.size()) + " bytes, more than data.max_record_bytes = 1000");
}

TEST(Records, BadInput) {
  const std::string dir = scratch_dir("data_records_bad");
  expect_error_contains([&] { read_record_file(dir + "/missing.jsonl"); }, "missing.jsonl: cannot open");
  write_file(dir + "/r.txt", "x");
  expect_error_contains([&] { read_record_file(dir + "/r.txt"); }, "unsupported record file");
  // corrupt gzip: a valid stream cut short, and garbage after a gzip magic
  write_gz(dir + "/good.jsonl.gz", std::string(5000, ' ') + "{\"prompt\": \"a\", \"response\": \"b\"}\n");
  const std::string gz = infini::testing::read_file(dir + "/good.jsonl.gz");
  write_file(dir + "/cut.jsonl.gz", gz.substr(0, gz.size() / 2));
  expect_error_contains([&] { read_record_file(dir + "/cut.jsonl.gz"); }, "cut.jsonl.gz: corrupt gzip data");
  write_file(dir + "/junk.jsonl.gz", std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10) + "garbage garbage");
  expect_error_contains([&] { read_record_file(dir + "/junk.jsonl.gz"); }, "junk.jsonl.gz: corrupt gzip data");
  // malformed JSON: file:line and the parser's message
  write_file(dir + "/bad.jsonl", "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"a\", \"response\": }\n");
  expect_error_contains([&] { read_record_file(dir + "/bad.jsonl"); }, "bad.jsonl:2: malformed JSON: [json.exception.parse_error");
  write_file(dir + "/bad.json", "[\n{\"prompt\": \"a\"},\n{\"prompt\" \"b\"}\n]");
  expect_error_contains([&] { read_record_file(dir + "/bad.json"); }, "bad.json:3: malformed JSON");
  write_file(dir + "/obj.json", "{\"prompt\": \"a\"}");
  expect_error_contains([&] { read_record_file(dir + "/obj.json"); }, "must hold an array, found object");
  // missing fields and wrong types: where + field
  expect_error_contains([&] { parse_sft_record(nlohmann::json::parse(R"({"prompt": "a"})"), "f.jsonl:7"); },
                        "f.jsonl:7: missing field \"response\"");
  expect_error_contains([&] { parse_sft_record(nlohmann::json::parse(R"({"prompt": "a", "response": 5})"), "f.jsonl:7"); },
                        "f.jsonl:7: field \"response\" must be a string, found number");
  expect_error_contains([&] { parse_sft_record(nlohmann::json::parse(R"({"text": "a"})"), "f.jsonl:8"); },
                        "f.jsonl:8: an SFT record needs");
  expect_error_contains([&] { parse_sft_record(nlohmann::json::parse(R"({"messages": [{"role": "user", "content": "a"}]})"), "f:1"); },
                        "must end with an assistant turn");
  expect_error_contains([&] { parse_sft_record(nlohmann::json::parse(R"({"messages": [{"role": "bot", "content": "a"}]})"), "f:1"); },
                        "f:1 messages[0]: field \"role\" must be system, user or assistant");
  expect_error_contains([&] { parse_sft_record(nlohmann::json::parse(R"([1, 2])"), "f:2"); }, "f:2: a record must be a JSON object, found array");
  expect_error_contains([&] { parse_preference_record(nlohmann::json::parse(R"({"prompt": "a", "chosen": "b"})"), "p:3"); },
                        "p:3: a preference record needs");
  expect_error_contains([&] { parse_preference_record(nlohmann::json::parse(R"({"chosen": ["b"], "rejected": "c"})"), "p:4"); },
                        "p:4: field \"chosen\" must be a string, found array");
  expect_error_contains([&] { parse_preference_record(nlohmann::json::parse(R"({"chosen": "Human: x", "rejected": "Human: y"})"), "p:5"); },
                        "p:5: HH-RLHF record");
  expect_error_contains([&] { parse_prompt_record(nlohmann::json::parse(R"({"answer": "a"})"), "q:1"); }, "q:1: missing field \"prompt\"");
  expect_error_contains([&] { parse_prompt_record(nlohmann::json::parse(R"({"prompt": "a", "answer": [1]})"), "q:2"); },
                        "q:2: field \"answer\" must be a string or a number, found array");
}

TEST(Records, LoaderBadInput) {
  const std::string dir = scratch_dir("data_records_loader_bad");
  DataConfig cfg;
  cfg.format = "sft";
  cfg.seq_len = 64;
  write_file(dir + "/empty.jsonl", "\n\n");
  cfg.train = {dir + "/empty.jsonl"};
  expect_error_contains([&] { Loader l(cfg, Split::train, &tok(), 2, 0); }, "empty dataset: no records");
  write_file(dir + "/long.jsonl", "{\"prompt\": \"" + std::string(400, 'z') + "\", \"response\": \"b\"}\n");
  cfg.train = {dir + "/long.jsonl"};
  cfg.truncate = "drop";
  expect_error_contains([&] { Loader l(cfg, Split::train, &tok(), 2, 0); }, "empty dataset: all 1 records");
  write_file(dir + "/typo.jsonl", "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"a\", \"reponse\": \"b\"}\n");
  cfg.train = {dir + "/typo.jsonl"};
  expect_error_contains([&] { Loader l(cfg, Split::train, &tok(), 2, 0); }, "typo.jsonl:2: missing field \"response\"");
  cfg.format = "tokens";
  cfg.train = {dir};
  expect_error_contains([&] { Loader l(cfg, Split::train, nullptr, 2, 0); }, "index.json: cannot open");
  cfg.format = "sft";
  expect_error_contains([&] { Loader l(cfg, Split::train, nullptr, 2, 0); }, "needs a tokenizer");
  cfg.format = "chat";
  EXPECT_THROW(Loader(cfg, Split::train, &tok(), 2, 0), ConfigError);
}
}  // namespace test_data_records
