// Tests of the Loader (token packing, padding, determinism, exact resume with and without
// prefetch, rank sharding) and of the synthetic tasks (passkey lengths and depth, rule answers).
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include <algorithm>
#include <map>
#include <regex>

#include "core/error.h"
#include "data/loader.h"
#include "data/prepare.h"
#include "data/records.h"
#include "data/synth.h"
#include "data/token_shards.h"
#include "data/tokenizer.h"
#include "tests/test_data_util.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_data_loader {

using namespace infini;
using infini::testing::generated_text;
using infini::testing::read_file;
using infini::testing::scratch_dir;
using infini::testing::tiny_tokenizer;
using infini::testing::write_file;

namespace {

const Tokenizer& tok() { return tiny_tokenizer("data_loader"); }

std::vector<int64_t> row(const torch::Tensor& t, int64_t r) {
  auto c = t[r].contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

bool same(const Batch& a, const Batch& b) {
  return a.tokens.equal(b.tokens) && a.loss_mask.equal(b.loss_mask) && a.lengths.equal(b.lengths);
}

// A shard dir of 3 small shard files over generated text (rows then cross shard boundaries).
const std::string& shard_dir() {
  static std::string dir;
  if (dir.empty()) {
    dir = scratch_dir("data_loader_shards");
    write_file(dir + "/text.txt", generated_text(300, 5));
    PrepareOptions opt;
    opt.inputs = {dir + "/text.txt"};
    opt.out_dir = dir + "/shards";
    opt.val_fraction = 0.1;
    opt.shard_tokens = 1000;
    prepare_corpus(tok(), opt);
    dir += "/shards";
  }
  return dir;
}

std::vector<int64_t> all_tokens(const std::vector<std::string>& files) {
  std::vector<int64_t> out;
  for (const auto& f : files) {
    TokenShard s(f);
    std::vector<int64_t> b(static_cast<size_t>(s.size()));
    s.read(0, s.size(), b.data());
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

// 23 SFT records with distinct responses, so a sample is recognisable from its tokens.
std::string sft_file() {
  static std::string path;
  if (path.empty()) {
    const std::string dir = scratch_dir("data_loader_sft");
    std::string text;
    for (int i = 0; i < 23; ++i)
      text += nlohmann::json({{"prompt", "Count to " + std::to_string(i)}, {"response", std::string(static_cast<size_t>(i % 5 + 1), 'a') + std::to_string(i)}}).dump() + "\n";
    path = dir + "/sft.jsonl";
    write_file(path, text);
  }
  return path;
}

DataConfig sft_cfg(int64_t prefetch) {
  DataConfig c;
  c.format = "sft";
  c.train = {sft_file()};
  c.seq_len = 128;
  c.prefetch = prefetch;
  return c;
}

}  // namespace

TEST(Loader, TokensRowsOverlapByOneAndCrossShards) {
  DataConfig cfg;
  cfg.train = {shard_dir()};
  cfg.seq_len = 16;
  cfg.shuffle = false;
  cfg.prefetch = 0;
  const ShardIndex idx = read_shard_index(shard_dir());
  ASSERT_GE(idx.train_files.size(), 3u);
  const auto stream = all_tokens(idx.train_files);
  Loader l(cfg, Split::train, nullptr, 4, 0);
  EXPECT_EQ(l.size(), static_cast<int64_t>((stream.size() - 1) / 15));
  int64_t sample = 0;
  for (int b = 0; b < 30; ++b) {
    const Batch batch = l.next();
    ASSERT_EQ(batch.tokens.sizes(), (std::vector<int64_t>{4, 16}));
    for (int64_t r = 0; r < 4; ++r, ++sample) {
      const int64_t s = sample % l.size();
      EXPECT_EQ(row(batch.tokens, r), std::vector<int64_t>(stream.begin() + s * 15, stream.begin() + s * 15 + 16)) << s;
    }
    EXPECT_EQ(batch.loss_mask.select(1, 0).sum().item<float>(), 0.f);
    EXPECT_EQ(batch.loss_mask.sum().item<float>(), 4.f * 15.f);
    EXPECT_EQ(batch.num_tokens(), 64);
  }
  // val split falls back to the dir's val shards
  const auto val_stream = all_tokens(idx.val_files);
  Loader v(cfg, Split::val, nullptr, 2, 0);
  EXPECT_EQ(v.size(), static_cast<int64_t>((val_stream.size() - 1) / 15));
  const auto batches = v.all_batches();
  EXPECT_EQ(row(batches[0].tokens, 1), std::vector<int64_t>(val_stream.begin() + 15, val_stream.begin() + 31));
  EXPECT_EQ(static_cast<int64_t>(batches.size()), (v.size() + 1) / 2);
  EXPECT_EQ(v.all_batches(1).size(), 1u);
}

// Shards are checked against what their index.json records: the tokenizer that made them (by
// hash) and each file's token count. Both used to be read and never compared.
TEST(Loader, ShardsOfAnotherTokenizerOrWithAWrongCountAreRefused) {
  namespace fs = std::filesystem;
  const std::string base = scratch_dir("data_loader_index_checks");
  auto copy_with = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    const std::string dir = base + "/" + name;
    fs::copy(shard_dir(), dir, fs::copy_options::recursive);
    nlohmann::json j = nlohmann::json::parse(read_file(dir + "/index.json"));
    edit(j);
    write_file(dir + "/index.json", j.dump(2));
    return dir;
  };
  DataConfig cfg;
  cfg.seq_len = 16;
  cfg.prefetch = 0;
  cfg.train = {copy_with("same", [](nlohmann::json&) {})};
  EXPECT_NO_THROW(Loader(cfg, Split::train, &tok(), 2, 0));  // made with tok(): accepted

  cfg.train = {copy_with("other_tok", [](nlohmann::json& j) { j["tokenizer_hash"] = "0123456789abcdef"; })};
  try {
    Loader(cfg, Split::train, &tok(), 2, 0);
    FAIL() << "shards of another tokenizer were accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("the shards were made with another tokenizer"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("hash 0123456789abcdef"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(tok().content_hash()), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(Loader(cfg, Split::train, nullptr, 2, 0));  // no tokenizer given: nothing to compare

  cfg.train = {copy_with("bad_count", [](nlohmann::json& j) { j["train"][0]["tokens"] = 1000000000000LL; })};
  try {
    Loader(cfg, Split::train, &tok(), 2, 0);
    FAIL() << "a wrong token count was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokens but the index records 1000000000000"), std::string::npos) << e.what();
  }
}

TEST(Loader, ShuffleIsADeterministicPermutationPerEpoch) {
  DataConfig cfg = sft_cfg(0);
  Loader a(cfg, Split::train, &tok(), 1, 42), b(cfg, Split::train, &tok(), 1, 42), c(cfg, Split::train, &tok(), 1, 43);
  std::vector<std::vector<int64_t>> ea, eb, ec;
  for (int i = 0; i < 2 * 23; ++i) {
    ea.push_back(row(a.next().tokens, 0));
    eb.push_back(row(b.next().tokens, 0));
    ec.push_back(row(c.next().tokens, 0));
  }
  EXPECT_EQ(ea, eb);
  EXPECT_NE(ea, ec);
  EXPECT_EQ(a.epoch(), 2);
  // each epoch holds every sample once, in a different order
  std::vector<std::vector<int64_t>> e0(ea.begin(), ea.begin() + 23), e1(ea.begin() + 23, ea.end());
  EXPECT_NE(e0, e1);
  std::sort(e0.begin(), e0.end());
  std::sort(e1.begin(), e1.end());
  EXPECT_EQ(e0, e1);
  EXPECT_EQ(std::unique(e0.begin(), e0.end()), e0.end());
}

TEST(Loader, PaddingMasksAndLengths) {
  DataConfig cfg = sft_cfg(0);
  cfg.shuffle = false;
  Loader l(cfg, Split::train, &tok(), 5, 0);
  const Batch b = l.next();
  const auto recs = read_record_file(sft_file());
  int64_t longest = 0;
  for (int64_t r = 0; r < 5; ++r) {
    const Rendered want = render_sft(tok(), cfg.chat, parse_sft_record(recs[static_cast<size_t>(r)].value, ""));
    const int64_t n = static_cast<int64_t>(want.tokens.size());
    longest = std::max(longest, n);
    EXPECT_EQ(b.lengths[r].item<int64_t>(), n);
    const auto got = row(b.tokens, r);
    for (int64_t t = 0; t < b.tokens.size(1); ++t) {
      EXPECT_EQ(got[static_cast<size_t>(t)], t < n ? want.tokens[static_cast<size_t>(t)] : tok().pad_id());
      EXPECT_EQ(b.loss_mask[r][t].item<float>(), t < n ? want.mask[static_cast<size_t>(t)] : 0.f);
    }
  }
  EXPECT_EQ(b.tokens.size(1), longest);
  EXPECT_EQ(b.tokens.dtype(), torch::kInt64);
  EXPECT_EQ(b.loss_mask.dtype(), torch::kFloat32);
}

// data.pack: each batch holds the same records as without it (same order of batches, same
// tokens and loss masks, found again by their positions), in fewer rows, and resumes the same way.
TEST(Loader, PackedBatchesHoldTheSameRecordsInFewerRows) {
  using Rec = std::pair<std::vector<int64_t>, std::vector<float>>;
  Loader plain(sft_cfg(0), Split::train, &tok(), 8, 7), packed(sft_cfg(2), Split::train, &tok(), 8, 7);
  packed.pack_rows(4);  // segments of 4: most records span several
  int64_t rows_plain = 0, rows_packed = 0;
  for (int step = 0; step < 4; ++step) {  // 32 samples: across the end of the first epoch (23)
    const Batch a = plain.next(), b = packed.next();
    ASSERT_TRUE(b.positions.defined());
    EXPECT_EQ(b.records, 8);
    EXPECT_EQ(b.num_tokens(), a.num_tokens());
    rows_plain += a.size();
    rows_packed += b.size();
    std::vector<Rec> want, got;
    for (int64_t r = 0; r < a.size(); ++r) {
      const int64_t n = a.lengths[r].item<int64_t>();
      const auto t = row(a.tokens, r);
      std::vector<float> m(a.loss_mask[r].data_ptr<float>(), a.loss_mask[r].data_ptr<float>() + n);
      want.emplace_back(std::vector<int64_t>(t.begin(), t.begin() + n), m);
    }
    for (int64_t r = 0; r < b.size(); ++r) {  // runs from a position 0 to the next; padding dropped
      const auto t = row(b.tokens, r), p = row(b.positions, r);
      for (size_t i = 0; i < t.size();) {
        size_t j = i + 1;
        while (j < t.size() && p[j] != 0) ++j;
        std::vector<int64_t> toks(t.begin() + static_cast<long>(i), t.begin() + static_cast<long>(j));
        const float* mp = b.loss_mask[r].data_ptr<float>();
        if (toks[0] != tok().pad_id()) got.emplace_back(toks, std::vector<float>(mp + i, mp + j));
        i = j;
      }
    }
    std::sort(want.begin(), want.end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, want) << "batch " << step;
  }
  EXPECT_LT(rows_packed * 2, rows_plain);
  EXPECT_EQ(packed.state(), plain.state());
}

TEST(Loader, PreferencePairsShareT) {
  const std::string dir = scratch_dir("data_loader_pref");
  write_file(dir + "/p.jsonl",
             "{\"prompt\": \"2+2?\", \"chosen\": \"4\", \"rejected\": \"five, I think, or maybe six\"}\n"
             "{\"chosen\": \"\\n\\nHuman: hi\\n\\nAssistant: hello there\", \"rejected\": \"\\n\\nHuman: hi\\n\\nAssistant: go\"}\n");
  DataConfig cfg;
  cfg.format = "preference";
  cfg.train = {dir + "/p.jsonl"};
  cfg.shuffle = false;
  Loader l(cfg, Split::train, &tok(), 2, 0);
  const Batch b = l.next();
  ASSERT_TRUE(b.rejected_tokens.defined());
  EXPECT_EQ(b.tokens.sizes(), b.rejected_tokens.sizes());
  EXPECT_EQ(b.rejected_lengths[0].item<int64_t>(), static_cast<int64_t>(2 + tok().encode("### User:\n2+2?\n\n### Assistant:\n").size() +
                                                                       tok().encode("five, I think, or maybe six").size()));
  EXPECT_EQ(b.rejected_mask[0].sum().item<float>(), static_cast<float>(tok().encode("five, I think, or maybe six").size() + 1));
  EXPECT_EQ(b.loss_mask[1].sum().item<float>(), static_cast<float>(tok().encode(" hello there").size() + 1));
  EXPECT_EQ(b.num_tokens(), b.lengths.sum().item<int64_t>() + b.rejected_lengths.sum().item<int64_t>());
}

TEST(Loader, PromptsCarryAnswers) {
  const std::string dir = scratch_dir("data_loader_prompts");
  write_file(dir + "/q.jsonl", "{\"prompt\": \"1+1?\", \"answer\": \"2\"}\n{\"prompt\": \"hello\"}\n");
  DataConfig cfg;
  cfg.format = "prompts";
  cfg.train = {dir + "/q.jsonl"};
  cfg.shuffle = false;
  Loader l(cfg, Split::train, &tok(), 2, 0);
  const Batch b = l.next();
  EXPECT_EQ(b.answers, (std::vector<std::string>{"2", ""}));
  EXPECT_EQ(b.loss_mask.sum().item<float>(), 0.f);
  EXPECT_EQ(b.lengths[1].item<int64_t>(), static_cast<int64_t>(1 + tok().encode("### User:\nhello\n\n### Assistant:\n").size()));
}

TEST(Loader, ResumeIsExactWithAndWithoutPrefetch) {
  for (int64_t pf_save : {0, 3}) {
    for (int64_t pf_load : {0, 2}) {
      Loader ref(sft_cfg(0), Split::train, &tok(), 4, 7);
      std::vector<Batch> want;
      for (int i = 0; i < 20; ++i) want.push_back(ref.next());

      Loader a(sft_cfg(pf_save), Split::train, &tok(), 4, 7);
      for (int i = 0; i < 9; ++i) ASSERT_TRUE(same(a.next(), want[static_cast<size_t>(i)]));
      const nlohmann::json st = a.state();  // mid-epoch: 36 samples = 1 epoch + 13
      EXPECT_EQ(st["epoch"], 1);
      EXPECT_EQ(st["index"], 13);
      for (int i = 9; i < 12; ++i) ASSERT_TRUE(same(a.next(), want[static_cast<size_t>(i)]));

      Loader b(sft_cfg(pf_load), Split::train, &tok(), 4, 7);
      b.next();  // a stale position (and prefetched batches) must be discarded
      b.load_state(nlohmann::json::parse(st.dump()));
      for (int i = 9; i < 20; ++i) EXPECT_TRUE(same(b.next(), want[static_cast<size_t>(i)])) << pf_save << " " << pf_load << " " << i;
      // re-loading on the same loader rewinds it
      a.load_state(st);
      EXPECT_TRUE(same(a.next(), want[9]));
    }
  }
}

TEST(Loader, StateMismatchIsRefused) {
  Loader a(sft_cfg(0), Split::train, &tok(), 4, 7);
  nlohmann::json st = a.state();
  st["samples"] = 99;
  EXPECT_THROW(a.load_state(st), Error);
  Loader b(sft_cfg(0), Split::train, &tok(), 4, 8);
  EXPECT_THROW(b.load_state(a.state()), Error);
  EXPECT_THROW(a.load_state(nlohmann::json::object()), Error);
}

// W ranks read the batches one rank reads: rank r gets the r-th contiguous slice of each global
// batch, across epoch ends (23 samples, batches of 6), and the position is a global one, so a state
// saved on one world size goes on in the same order on another.
TEST(Loader, RanksSliceTheGlobalBatches) {
  auto rows_of = [](const Batch& b) {  // each row without its padding (batches pad to their own longest)
    std::vector<std::vector<int64_t>> out;
    for (int64_t i = 0; i < b.size(); ++i) {
      std::vector<int64_t> r = row(b.tokens, i);
      r.resize(static_cast<size_t>(b.lengths[i].item<int64_t>()));
      out.push_back(r);
    }
    return out;
  };
  Loader one(sft_cfg(0), Split::train, &tok(), 6, 3);
  std::vector<std::vector<std::vector<int64_t>>> global;  // batch -> rows
  for (int k = 0; k < 9; ++k) global.push_back(rows_of(one.next()));
  for (int world : {2, 3}) {
    std::vector<std::unique_ptr<Loader>> ranks;
    for (int r = 0; r < world; ++r)
      ranks.push_back(std::make_unique<Loader>(sft_cfg(r % 2), Split::train, &tok(), 6, 3, r, world));
    for (int k = 0; k < 9; ++k) {
      std::vector<std::vector<int64_t>> joined;
      for (auto& l : ranks) {
        Batch b = l->next();
        EXPECT_EQ(b.size(), 6 / world);
        for (auto& x : rows_of(b)) joined.push_back(x);
      }
      EXPECT_EQ(joined, global[static_cast<size_t>(k)]) << "world " << world << " batch " << k;
      if (k == 4) {  // 30 samples read: epoch 1, index 7, on every rank and world size
        for (auto& l : ranks) EXPECT_EQ(l->state()["index"], 7);
        // Resume the world-`world` position on a different world size: the same batches follow.
        const int other = world == 2 ? 3 : 1;
        std::vector<std::unique_ptr<Loader>> moved;
        for (int r = 0; r < other; ++r) {
          moved.push_back(std::make_unique<Loader>(sft_cfg(0), Split::train, &tok(), 6, 3, r, other));
          moved.back()->load_state(ranks[0]->state());
        }
        std::vector<std::vector<int64_t>> next;
        for (auto& l : moved)
          for (auto& x : rows_of(l->next())) next.push_back(x);
        EXPECT_EQ(next, global[5]) << "world " << world << " resumed on " << other;
      }
    }
    // One unshuffled pass: the ranks partition the samples.
    std::map<std::vector<int64_t>, int> seen;
    for (auto& l : ranks)
      for (const Batch& b : l->all_batches())
        for (auto& x : rows_of(b)) ++seen[x];
    EXPECT_EQ(seen.size(), 23u);
    for (const auto& kv : seen) EXPECT_EQ(kv.second, 1);
  }
  EXPECT_THROW(Loader(sft_cfg(0), Split::train, &tok(), 3, 3, 3, 3), ConfigError);  // rank outside
  EXPECT_THROW(Loader(sft_cfg(0), Split::train, &tok(), 3, 3, 0, 2), ConfigError);  // 3 rows on 2 ranks
}

TEST(Synth, PasskeyExactLengthAndDepth) {
  for (int64_t len : {400, 700, 1200}) {
    for (double depth : {0.0, 0.5, 1.0}) {
      const PasskeyCase c = make_passkey(tok(), len, depth, 5, 11);
      ASSERT_EQ(static_cast<int64_t>(c.ids.size()), len);
      EXPECT_EQ(c.ids[0], tok().bos_id());
      EXPECT_EQ(c.key.size(), 5u);
      const auto key_ids = tok().encode(" " + c.key);
      EXPECT_EQ(std::vector<int>(c.ids.begin() + c.key_position, c.ids.begin() + c.key_position + static_cast<int64_t>(key_ids.size())), key_ids);
      // depth: share of the filler before the key sentence
      const int64_t task = static_cast<int64_t>(tok().encode(
          "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
          "I will quiz you about the important information there.").size());
      const int64_t before = c.key_position - 1 - task - static_cast<int64_t>(tok().encode(" The pass key is").size());
      const int64_t filler = len - (1 + task + static_cast<int64_t>(tok().encode(" The pass key is").size() + key_ids.size() +
                                                                     tok().encode(". Remember it. " + c.key + " is the pass key.").size() +
                                                                     tok().encode(" What is the pass key? The pass key is").size()));
      EXPECT_NEAR(static_cast<double>(before), depth * static_cast<double>(filler), 16.5) << len << " " << depth;
      // as text it tokenizes back to the same length
      EXPECT_EQ(static_cast<int64_t>(tok().encode(c.text).size()), len - 1);
      EXPECT_NE(c.text.find("The pass key is " + c.key + ". Remember it. " + c.key + " is the pass key."), std::string::npos);
      EXPECT_EQ(c.text.substr(c.text.size() - 37), "What is the pass key? The pass key is");
    }
  }
  EXPECT_THROW(make_passkey(tok(), 20, 0.5, 5, 1), Error);
  EXPECT_THROW(make_passkey(tok(), 200, 1.5, 5, 1), Error);
}

// Evaluation builds prompts above 64K tokens as ids only; `data synth` records are text at any
// length (an empty prompt here once made 128K-token SFT records of nothing but the answer).
TEST(Synth, PasskeyRecordsAboveTheEvalTextLimitAreText) {
  const int64_t len = 600;
  EXPECT_TRUE(make_passkey(tok(), len, 0.5, 1, 3, len - 1).text.empty());
  EXPECT_FALSE(make_passkey(tok(), len, 0.5, 1, 3, len).text.empty());
  SynthOptions o;
  o.task = "passkey";
  o.count = 2;
  o.digits = 1;
  o.length = 70000;  // above make_passkey's default text limit of 65536 tokens
  for (const auto& r : make_synthetic(o, &tok())) {
    const std::string p = r["prompt"];
    EXPECT_EQ(static_cast<int64_t>(tok().encode(p).size()), o.length - 1);
    EXPECT_EQ(p.substr(p.size() - 37), "What is the pass key? The pass key is");
  }
}

TEST(Synth, RuleTasksHaveRightAnswers) {
  SynthOptions o;
  o.count = 50;
  o.task = "add";
  o.digits = 4;
  const std::regex add_re(R"(What is (\d+) \+ (\d+)\?)");
  for (const auto& r : make_synthetic(o, nullptr)) {
    std::smatch m;
    const std::string p = r["prompt"];
    ASSERT_TRUE(std::regex_match(p, m, add_re)) << p;
    EXPECT_EQ(r["response"].get<std::string>(), std::to_string(std::stoll(m[1]) + std::stoll(m[2])));
  }
  o.kind = "preference";
  for (const auto& r : make_synthetic(o, nullptr)) EXPECT_NE(r["chosen"], r["rejected"]);
  o.task = "sort";
  o.kind = "prompts";
  o.items = 4;
  for (const auto& r : make_synthetic(o, nullptr)) {
    const std::string p = r["prompt"], a = r["answer"];
    std::istringstream in(p.substr(p.find(':') + 2));
    std::vector<std::string> w{std::istream_iterator<std::string>(in), {}};
    ASSERT_EQ(w.size(), 4u);
    std::sort(w.begin(), w.end());
    EXPECT_EQ(a, w[0] + " " + w[1] + " " + w[2] + " " + w[3]);
  }
  o.task = "reverse";
  o.kind = "sft";
  const auto rev = make_synthetic(o, nullptr);
  EXPECT_EQ(rev[0]["prompt"].get<std::string>().rfind("Reverse the order of these words: ", 0), 0u);
  // kjv_book from a hand-written corpus in the documented layout
  const std::string dir = scratch_dir("data_synth_kjv");
  write_file(dir + "/kjv.txt", "Genesis 1\nIn the beginning.\nAnd light.\n\n1 Samuel 2\nHannah prayed.\n\nSong of Solomon 1\nThe song of songs.\n");
  o.task = "kjv_book";
  o.corpus = dir + "/kjv.txt";
  o.kind = "prompts";
  const std::map<std::string, std::string> book_of = {{"In the beginning.", "Genesis"}, {"And light.", "Genesis"},
                                                      {"Hannah prayed.", "1 Samuel"}, {"The song of songs.", "Song of Solomon"}};
  for (const auto& r : make_synthetic(o, nullptr)) {
    const std::string p = r["prompt"];
    const std::string verse = p.substr(p.find('"') + 1, p.size() - p.find('"') - 2);
    EXPECT_EQ(r["answer"], book_of.at(verse));
  }
  write_file(dir + "/bad.txt", "In the beginning.\n");
  o.corpus = dir + "/bad.txt";
  EXPECT_THROW(make_synthetic(o, nullptr), Error);
  o.task = "passkey";
  EXPECT_THROW(make_synthetic(o, nullptr), Error);  // needs a tokenizer
}

TEST(Synth, CliPasskeyRecords) {
  const std::string dir = scratch_dir("data_synth_cli");
  const std::string out = dir + "/pk.jsonl";
  const std::string cmd = std::string(INFINI_BINARY) + " data synth --task passkey --count 4 --length 500 --depth 0.25 --seed 3 --tokenizer " +
                          tok().path() + " --out " + out + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto recs = read_record_file(out);
  ASSERT_EQ(recs.size(), 4u);
  for (const auto& r : recs) {
    const auto sft = parse_sft_record(r.value, r.where);
    EXPECT_EQ(static_cast<int64_t>(tok().encode(sft.messages[0].content).size()), 499);
    EXPECT_EQ(sft.messages[1].content.size(), 6u);  // " 12345"
    EXPECT_NE(sft.messages[0].content.find(sft.messages[1].content.substr(1) + " is the pass key."), std::string::npos);
  }
  EXPECT_NE(std::system((std::string(INFINI_BINARY) + " data synth --task nope --count 1 --out " + out + " >/dev/null 2>&1").c_str()), 0);
}
}  // namespace test_data_loader
