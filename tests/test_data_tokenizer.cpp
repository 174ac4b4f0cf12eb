// Tests of the tokenizer shim (round trips, ids, bad models), corpus preparation and token shards
// (contents, split, every bad-shard case), and the `infini tokenizer/data` commands end to end.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/prepare.h"
#include "data/token_shards.h"
#include "data/tokenizer.h"
#include "data/utf8.h"
#include "support/run_util.h"
#include "tests/test_data_util.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_data_tokenizer {

using namespace infini;
using infini::testing::generated_text;
using infini::testing::read_file;
using infini::testing::scratch_dir;
using infini::testing::tiny_tokenizer;
using infini::testing::write_file;

namespace {

const Tokenizer& tok() { return tiny_tokenizer("data_tokenizer"); }

void expect_error_contains(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected infini::Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "multi-line error: " << e.what();
  }
}

int run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

}  // namespace

TEST(Tokenizer, SpecialIdsAndVocab) {
  EXPECT_EQ(tok().unk_id(), 0);
  EXPECT_EQ(tok().bos_id(), 1);
  EXPECT_EQ(tok().eos_id(), 2);
  EXPECT_EQ(tok().pad_id(), 3);
  EXPECT_GE(tok().vocab_size(), 262);
  EXPECT_LE(tok().vocab_size(), 400);
  EXPECT_EQ(tok().content_hash().size(), 16u);
  EXPECT_EQ(tok().content_hash(), file_hash_hex(tok().path()));
  // byte fallback pieces exist for every byte
  EXPECT_EQ(tok().id_to_piece(tok().piece_to_id("<0x41>")), "<0x41>");
  EXPECT_NE(tok().piece_to_id("<0xF0>"), tok().unk_id());
}

TEST(Tokenizer, RoundTripsAwkwardUtf8) {
  const std::vector<std::string> texts = {
      "The grass is green.",
      "  leading and  double  spaces, trailing ",
      "emoji: \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD family \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9",
      "CJK: \xE6\xBC\xA2\xE5\xAD\x97\xE3\x81\xB2\xE3\x82\x89\xE3\x81\x8C\xE3\x81\xAA \xED\x95\x9C\xEA\xB8\x80",
      "combining: e\xCC\x81 a\xCC\x8A n\xCC\x83 (not NFC-folded)",
      "control: tab\there\x01\x02\x7F bell\x07 cr\r lf\nnext line",
      "fullwidth \xEF\xBC\xA1\xEF\xBC\xA2 and ligature \xEF\xAC\x81 stay as they are",
      "digits 1234567890 and 3.14159",
      std::string(1, '\0') + "nul byte inside" + std::string(1, '\0'),
      "",
  };
  for (const auto& t : texts) {
    const auto ids = tok().encode(t);
    for (int id : ids) ASSERT_LT(id, tok().vocab_size());
    EXPECT_EQ(tok().decode(ids), t) << "text: " << t;
  }
  // digits are split, so numbers are at least one token per digit
  EXPECT_GE(tok().encode("12345").size(), 5u);
}

TEST(Tokenizer, RoundTripsCorpora) {
  // The default corpora when fetched (scripts/get_data.sh), else generated text.
  std::vector<std::string> docs;
  for (const char* name : {"kjv.txt", "austen.txt"}) {
    const std::string path = std::string(INFINI_SOURCE_DIR) + "/data/corpora/" + name;
    if (std::filesystem::exists(path)) docs.push_back(read_file(path).substr(0, 300000));
  }
  if (docs.empty()) docs.push_back(generated_text(2000, 7));
  for (const auto& d : docs) EXPECT_EQ(tok().decode(tok().encode(d)), d);
}

TEST(Tokenizer, BadModels) {
  const std::string dir = scratch_dir("data_tokenizer_bad");
  expect_error_contains([&] { Tokenizer::load(dir + "/missing.model"); }, "missing.model: no such file");
  write_file(dir + "/junk.model", "this is not a protobuf \x01\x02\x03");
  expect_error_contains([&] { Tokenizer::load(dir + "/junk.model"); }, "not a valid sentencepiece model");
  expect_error_contains([&] { Tokenizer::load(""); }, "no model path");
  expect_error_contains([&] { tok().decode({tok().vocab_size()}); }, "out of range");
}

TEST(Prepare, ShardsHoldDocumentsJoinedWithEos) {
  const std::string dir = scratch_dir("data_prepare");
  const std::string text = generated_text(400, 3);
  write_file(dir + "/a.txt", text);
  write_file(dir + "/b.txt", "Second file, one paragraph.\nStill the same document.\n\n\n\nAnd a last one.");
  PrepareOptions opt;
  opt.inputs = {dir + "/a.txt", dir + "/b.txt"};
  opt.out_dir = dir + "/shards";
  opt.val_fraction = 0.1;
  opt.threads = 2;
  opt.shard_tokens = 500;  // forces several shard files
  const PrepareStats st = prepare_corpus(tok(), opt);

  // Expected documents, split by hand with the documented rule.
  std::vector<std::string> docs;
  for (const auto& f : opt.inputs) {
    DocumentSplitter sp;
    std::string content = read_file(f), line;
    std::istringstream in(content);
    auto emit = [&](const std::string& d) { docs.push_back(d); };
    while (std::getline(in, line)) sp.feed_line(line, emit);
    sp.flush(emit);
  }
  EXPECT_EQ(docs[docs.size() - 2], "Second file, one paragraph.\nStill the same document.");
  EXPECT_EQ(docs.back(), "And a last one.");
  std::vector<int64_t> want_train, want_val;
  int64_t n_val = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    auto ids = tok().encode(docs[i]);
    auto& dst = is_val_document(static_cast<int64_t>(i), 0.1) ? want_val : want_train;
    n_val += is_val_document(static_cast<int64_t>(i), 0.1);
    dst.insert(dst.end(), ids.begin(), ids.end());
    dst.push_back(tok().eos_id());
  }
  EXPECT_EQ(st.documents, static_cast<int64_t>(docs.size()));
  EXPECT_EQ(st.val_documents, n_val);
  EXPECT_NEAR(static_cast<double>(n_val), 0.1 * docs.size(), 1.0);

  const ShardIndex idx = read_shard_index(opt.out_dir);
  EXPECT_EQ(idx.vocab_size, tok().vocab_size());
  EXPECT_EQ(idx.eos_id, 2);
  EXPECT_EQ(idx.tokenizer_hash, tok().content_hash());
  EXPECT_GT(idx.train_files.size(), 1u);
  for (auto [files, want] : {std::pair{idx.train_files, want_train}, std::pair{idx.val_files, want_val}}) {
    std::vector<int64_t> got;
    for (const auto& f : files) {
      TokenShard s(f);
      std::vector<int64_t> buf(static_cast<size_t>(s.size()));
      s.read(0, s.size(), buf.data());
      got.insert(got.end(), buf.begin(), buf.end());
      // uint16 on disk: 32-byte header + 2 bytes per token
      EXPECT_EQ(std::filesystem::file_size(f), 32u + 2u * static_cast<uint64_t>(s.size()));
    }
    EXPECT_EQ(got, want);
  }
  EXPECT_EQ(st.train_tokens, static_cast<int64_t>(want_train.size()));
}

TEST(Prepare, DocumentsAreCapped) {
  DocumentSplitter sp;
  std::vector<std::string> docs;
  auto emit = [&](const std::string& d) { docs.push_back(d); };
  const std::string line(1000, 'x');
  for (int i = 0; i < 200; ++i) sp.feed_line(line, emit);  // 200 KB without a blank line
  sp.feed_line(std::string(150000, 'y'), emit);             // one giant line
  sp.flush(emit);
  size_t total = 0;
  for (const auto& d : docs) {
    EXPECT_LE(d.size(), kMaxDocumentBytes);
    total += d.size();
  }
  EXPECT_EQ(docs.size(), 4u + 3u);  // 65 lines of 1001 bytes per document; 150000 = 3 pieces
  EXPECT_EQ(total, 200u * 1000u + 199u - 3u + 150000u);  // the 3 cuts drop 3 joining newlines
}

TEST(Prepare, EmptyInputAndMissingFile) {
  const std::string dir = scratch_dir("data_prepare_bad");
  write_file(dir + "/blank.txt", "\n\n   \n");
  PrepareOptions opt;
  opt.inputs = {dir + "/blank.txt"};
  opt.out_dir = dir + "/out";
  expect_error_contains([&] { prepare_corpus(tok(), opt); }, "hold no documents");
  opt.inputs = {dir + "/nope.txt"};
  expect_error_contains([&] { prepare_corpus(tok(), opt); }, "nope.txt: cannot open");
}

TEST(Shards, BadShardsAreRefused) {
  const std::string dir = scratch_dir("data_shards_bad");
  {
    ShardWriter w(dir + "/good.bin", 300);
    const int ids[] = {1, 5, 299, 2};
    w.append(ids, 4);
    w.finish();
  }
  TokenShard good(dir + "/good.bin");
  std::vector<int64_t> got(4);
  good.read(0, 4, got.data());
  EXPECT_EQ(got, (std::vector<int64_t>{1, 5, 299, 2}));
  const std::string bytes = read_file(dir + "/good.bin");
  ASSERT_EQ(bytes.size(), 32u + 8u);

  std::string bad = bytes;
  bad[0] = 'X';
  write_file(dir + "/magic.bin", bad);
  expect_error_contains([&] { TokenShard s(dir + "/magic.bin"); }, "bad magic");
  bad = bytes;
  bad[8] = 7;
  write_file(dir + "/version.bin", bad);
  expect_error_contains([&] { TokenShard s(dir + "/version.bin"); }, "format version 7");
  write_file(dir + "/trunc.bin", bytes.substr(0, bytes.size() - 3));
  expect_error_contains([&] { TokenShard s(dir + "/trunc.bin"); }, "(truncated)");
  write_file(dir + "/tiny.bin", bytes.substr(0, 10));
  expect_error_contains([&] { TokenShard s(dir + "/tiny.bin"); }, "shorter than the 32-byte header");
  bad = bytes;
  bad[32 + 2] = static_cast<char>(0x2C);  // id 300 (0x012C) at token 1
  bad[32 + 3] = 0x01;
  write_file(dir + "/id.bin", bad);
  expect_error_contains([&] { TokenShard s(dir + "/id.bin"); }, "token 1 has id 300 >= vocab_size 300");
  expect_error_contains([&] { TokenShard s(dir + "/absent.bin"); }, "absent.bin: cannot open");
  expect_error_contains([&] { ShardWriter w(dir + "/w.bin", 10); const int id = 10; w.append(&id, 1); },
                        "token id 10 out of range");
  expect_error_contains([&] { read_shard_index(dir); }, "index.json: cannot open");
  write_file(dir + "/index.json", "{\"format\": \"infini-token-shards\", \"version\": 1,");
  expect_error_contains([&] { read_shard_index(dir); }, "malformed JSON");
  write_file(dir + "/index.json", R"({"format": "infini-token-shards", "version": 1, "vocab_size": "big"})");
  expect_error_contains([&] { read_shard_index(dir); }, "key \"vocab_size\" must be an integer, found string");
}

TEST(Cli, TokenizerTrainAndDataPrepare) {
  const std::string dir = scratch_dir("data_cli");
  write_file(dir + "/text.txt", generated_text(800, 11));
  const std::string bin = INFINI_BINARY;
  ASSERT_EQ(run(bin + " tokenizer train --input " + dir + "/text.txt --vocab-size 400 --out " + dir + "/t"), 0);
  EXPECT_TRUE(std::filesystem::exists(dir + "/t.model"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/t.vocab"));
  ASSERT_EQ(run(bin + " data prepare --tokenizer " + dir + "/t.model --input " + dir + "/text.txt --out " + dir +
                "/shards --val-fraction 0.05"), 0);
  const auto index = nlohmann::json::parse(read_file(dir + "/shards/index.json"));
  EXPECT_GT(index["tokens"]["train"].get<int64_t>(), 1000);
  EXPECT_GT(index["documents"]["val"].get<int64_t>(), 0);
  // failures: non-zero exit
  EXPECT_NE(run(bin + " data prepare --tokenizer " + dir + "/none.model --input " + dir + "/text.txt --out " + dir + "/x"), 0);
  EXPECT_NE(run(bin + " tokenizer train --input " + dir + "/none.txt --vocab-size 300 --out " + dir + "/u"), 0);
}

// Well-formed UTF-8 by RFC 3629's table, byte by byte (every count below is by hand).
TEST(Utf8, CountsTheBytesOutsideWellFormedSequences) {
  size_t first = 99;
  EXPECT_EQ(invalid_utf8_bytes("plain ascii", &first), 0u);
  EXPECT_EQ(first, 11u);
  EXPECT_EQ(invalid_utf8_bytes("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), 0u);  // 2, 3 and 4 bytes
  EXPECT_EQ(invalid_utf8_bytes("ab\xff", &first), 1u);
  EXPECT_EQ(first, 2u);
  EXPECT_EQ(invalid_utf8_bytes("\xc3"), 1u);              // cut short
  EXPECT_EQ(invalid_utf8_bytes("\xe2\x82z"), 2u);         // cut short, then a letter
  EXPECT_EQ(invalid_utf8_bytes("\xc0\xaf"), 2u);          // overlong '/'
  EXPECT_EQ(invalid_utf8_bytes("\xe0\x80\xaf"), 3u);      // overlong '/' in three bytes
  EXPECT_EQ(invalid_utf8_bytes("\xed\xa0\x80"), 3u);      // a surrogate (U+D800)
  EXPECT_EQ(invalid_utf8_bytes("\xf4\x90\x80\x80"), 4u);  // above U+10FFFF
  EXPECT_EQ(invalid_utf8_bytes("\x80\xbf"), 2u);          // continuation bytes alone
  EXPECT_EQ(invalid_utf8_bytes("\xef\xbf\xbd"), 0u);      // U+FFFD itself is fine
}

// The real tokenizer agrees: each byte counted invalid comes back from a round trip as one U+FFFD.
TEST(Utf8, EachInvalidByteBecomesOneReplacementCharacterInTheTokenizer) {
  const std::string text = "stone \xff\xfe river \xc3 x \xe2\x82 y \xed\xa0\x80 z \xc0\xaf end";
  const std::string back = tok().decode(tok().encode(text));
  size_t replacements = 0;
  for (size_t at = back.find("\xef\xbf\xbd"); at != std::string::npos; at = back.find("\xef\xbf\xbd", at + 1)) ++replacements;
  EXPECT_EQ(replacements, invalid_utf8_bytes(text));
  EXPECT_EQ(replacements, 2u + 1u + 2u + 3u + 2u);
}

// data prepare and tokenizer train say how many bytes were not UTF-8 and where the first was;
// index.json records the count per input.
TEST(Cli, InvalidUtf8IsReportedWithItsPlace) {
  const std::string dir = scratch_dir("data_cli_utf8");
  write_file(dir + "/good.txt", generated_text(400, 2));
  write_file(dir + "/bad.txt", "A first line\n\nsecond \xff line and \xc3\n" + generated_text(100, 4));
  const std::string bin = INFINI_BINARY;
  auto r = infini::test::run_cmd(bin + " tokenizer train --input " + dir + "/good.txt " + dir + "/bad.txt --vocab-size 400 --out " +
                                 dir + "/t 2>&1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: tokenizer train: 2 bytes of the input are not valid UTF-8 (the first at " + dir +
                          "/bad.txt:3:8)"), std::string::npos) << r.output;
  r = infini::test::run_cmd(bin + " data prepare --tokenizer " + dir + "/t.model --input " + dir + "/good.txt " + dir +
                            "/bad.txt --out " + dir + "/shards 2>&1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: data prepare: " + dir + "/bad.txt: 2 bytes are not valid UTF-8 (the first at line 3, "
                          "byte 8); each was tokenized as U+FFFD"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("good.txt: "), std::string::npos) << r.output;
  const auto index = nlohmann::json::parse(read_file(dir + "/shards/index.json"));
  EXPECT_EQ(index.at("invalid_utf8_bytes"), nlohmann::json({{dir + "/bad.txt", 2}}));
}

// sentencepiece's trainer writes warnings to std::cerr from inside the dlopen'ed shim: a line
// longer than its maximum sentence length, or a text with nothing to learn, made it log and the
// process died (exit 139) before the fix in CMakeLists.txt (-fPIC executables).
TEST(Cli, TokenizerTrainSurvivesSentencepieceLogging) {
  const std::string dir = scratch_dir("data_cli_spm_log");
  write_file(dir + "/long_line.txt", generated_text(300, 5) + std::string(20000, 'a') + "\n");
  write_file(dir + "/blank.txt", "   \n  \n\t\n");
  const std::string bin = INFINI_BINARY;
  for (const char* name : {"long_line", "blank"}) {
    auto r = infini::test::run_cmd(bin + " tokenizer train --input " + dir + "/" + name + ".txt --vocab-size 400 --out " +
                                   dir + "/" + name);
    EXPECT_LT(r.code, 128) << name << ": killed by a signal\n" << r.output;
    EXPECT_EQ(r.code, 0) << name << "\n" << r.output;
  }
  write_file(dir + "/empty.txt", "\n\n\n");
  auto r = infini::test::run_cmd(bin + " tokenizer train --input " + dir + "/empty.txt --vocab-size 400 --out " + dir + "/e");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("error: tokenizer train: the input (3 bytes) holds no text to train on, only empty lines"),
            std::string::npos) << r.output;
  r = infini::test::run_cmd(bin + " tokenizer train --input " + dir + "/long_line.txt --vocab-size 400 --out " + dir +
                            "/again");
  EXPECT_NE(r.output.find("cut 1 lines longer than 16384 bytes (sentencepiece's limit) into 2 lines"),
            std::string::npos) << r.output;
}

// Lines over sentencepiece's 16384-byte limit are cut (at spaces), not dropped: a word that occurs
// only in such a line is learned.
TEST(Tokenizer, LongLinesAreCutNotDropped) {
  const std::string dir = scratch_dir("tok_long_lines");
  std::string long_line;
  while (long_line.size() < 40000) long_line += "zebra quokka ";
  write_file(dir + "/text.txt", generated_text(300, 9) + long_line + "\n" + std::string(17000, 'b') + "\n");
  TokenizerTrainOptions opt;
  opt.inputs = {dir + "/text.txt"};
  opt.vocab_size = 400;
  opt.model_prefix = dir + "/t";
  opt.threads = 2;
  const TokenizerTrainReport rep = train_tokenizer(opt);
  EXPECT_EQ(rep.lines_cut, 2);
  EXPECT_EQ(rep.pieces_from_cuts, 3 + 2);  // 40001 bytes -> 3 lines (cut at spaces); 17000 -> 2
  EXPECT_EQ(rep.files_with_cuts, 1);
  const Tokenizer tok = Tokenizer::load(dir + "/t.model");
  EXPECT_LE(tok.encode(" quokka").size(), 2u);  // unseen, it would be 7 byte or character pieces
}

// A thread count above the machine's cores is capped with a warning (100000 threads used to be
// spawned and stall the machine); a negative one is a configuration error (exit 2).
TEST(Cli, ThreadCountsAreCappedAndNegativesRefused) {
  const std::string dir = scratch_dir("data_cli_threads");
  write_file(dir + "/text.txt", generated_text(300, 3));
  const std::string bin = INFINI_BINARY;
  auto r = infini::test::run_cmd(bin + " tokenizer train --input " + dir + "/text.txt --vocab-size 400 --out " + dir +
                                 "/t --threads 100000");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("--threads: 100000 threads asked for, this machine has"), std::string::npos) << r.output;
  r = infini::test::run_cmd(bin + " data prepare --tokenizer " + dir + "/t.model --input " + dir + "/text.txt --out " + dir +
                            "/shards --threads -3");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--threads: expected 0 (all cores) or a positive count, found -3"), std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir + "/shards/index.json"));
}
}  // namespace test_data_tokenizer
