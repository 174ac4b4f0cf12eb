// Packed rows (data.pack): where records go (placements derived by hand), the positions of a row,
// the rule's errors, and the property that matters: every record packed with others gets the same
// hidden states, the same loss and the same gradients as in a batch of one record per row, for
// every memory variant and both attention kernels.
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "core/local_attention.h"
#include "core/packed_rows.h"
#include "data/batch.h"
#include "data/packing.h"
#include "support/run_util.h"
#include "support/small_model.h"
#include "support/tiny_rlhf.h"
#include "train/stages/lm_loss.h"

namespace {

using infini::test::MemoryVariant;

TEST(PackRecords, PlacesLongestFirstOnBoundariesOrInsideOneSegment) {
  // Segments of 8, rows of 24. Longest first: 20 -> row 0 at 0 (fill 20); 12 cannot start at 24
  // in row 0 -> row 1 at 0; 8 does not fit in row 0's segment [16, 24) after 20, nor at 24 ->
  // row 1's next boundary 16; 5 fits nowhere -> row 2 at 0; 3 stays inside row 0's third segment
  // (20..22); 2 cannot follow 23 in row 0 (segment [16, 24) has one token left), row 1 is full ->
  // row 2 at 5, inside its first segment.
  const infini::PackPlan p = infini::pack_records({5, 12, 3, 8, 2, 20}, 24, 8);
  ASSERT_EQ(p.rows(), 3);
  const std::vector<std::pair<int64_t, int64_t>> want{{2, 0}, {1, 0}, {0, 20}, {1, 16}, {2, 5}, {0, 0}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(p.places[i].row, want[i].first) << "record " << i;
    EXPECT_EQ(p.places[i].offset, want[i].second) << "record " << i;
  }
  EXPECT_EQ(p.row_fill, (std::vector<int64_t>{23, 24, 7}));
  EXPECT_EQ(p.length(), 24);
}

TEST(PackRecords, RowPositionsCountRecordsAndCutPaddingAtBoundaries) {
  // Row 2 above: records at 0 (5 tokens) and 5 (2 tokens), then padding to 24.
  std::vector<int64_t> want{0, 1, 2, 3, 4, 0, 1, 0};  // the records, then one pad token
  for (int s = 0; s < 2; ++s)
    for (int64_t j = 0; j < 8; ++j) want.push_back(j);  // each padded segment counts again from 0
  EXPECT_EQ(infini::row_positions({0, 5}, {5, 2}, 24, 8), want);
  // A pad run between records: 0..3, pad 4..7 (0..3), a record from 8.
  EXPECT_EQ(infini::row_positions({0, 8}, {4, 3}, 11, 8), (std::vector<int64_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2}));
}

TEST(PackedRows, RefusesARecordThatCrossesABoundaryFromInsideASegment) {
  // A record starting at 5 that runs to 10 crosses the boundary at 8.
  torch::Tensor pos = torch::tensor({0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5}, torch::kLong).unsqueeze(0);
  try {
    infini::packed_rows(pos, 8);
    FAIL() << "expected an error";
  } catch (const infini::Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 0, token 8: position 3"), std::string::npos) << e.what();
  }
  torch::Tensor jump = torch::tensor({0, 1, 3}, torch::kLong).unsqueeze(0);
  EXPECT_THROW(infini::packed_rows(jump, 8), infini::Error);
  // One record per row is always valid, and its masks are the plain causal ones.
  infini::PackedRows one = infini::packed_rows(infini::unpacked_positions(2, 20), 8);
  EXPECT_TRUE(one.attend.select(1, 1).equal(torch::ones({2, 8, 8}, torch::kBool).tril()));
  EXPECT_TRUE(one.keep.equal(torch::tensor({0.f, 1.f, 1.f}).expand({2, 3})));
  EXPECT_EQ(one.reads.select(1, 0).sum().item<float>(), 0.f);
  EXPECT_EQ(one.reads.select(1, 2).sum().item<float>(), 8.f);  // 16..19 of each row; 20..23 are padding
}

// Random SFT-like records: tokens in [1, V), loss on a random tail (never the first token).
struct Records {
  std::vector<std::vector<int64_t>> tokens;
  std::vector<std::vector<float>> mask;
};
Records random_records(const std::vector<int64_t>& lengths, int64_t V, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Records r;
  for (int64_t L : lengths) {
    std::vector<int64_t> t(static_cast<size_t>(L));
    std::vector<float> m(static_cast<size_t>(L), 0.f);
    for (auto& x : t) x = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(V - 1));
    const int64_t prompt = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(L));
    for (int64_t j = prompt; j < L; ++j) m[static_cast<size_t>(j)] = 1.f;
    r.tokens.push_back(t);
    r.mask.push_back(m);
  }
  return r;
}

// One record per row, right-padded with 0 (what the loader makes without data.pack).
infini::Batch unpacked_batch(const Records& r) {
  int64_t T = 0;
  for (const auto& t : r.tokens) T = std::max<int64_t>(T, static_cast<int64_t>(t.size()));
  const int64_t B = static_cast<int64_t>(r.tokens.size());
  infini::Batch b;
  b.tokens = torch::zeros({B, T}, torch::kLong);
  b.loss_mask = torch::zeros({B, T});
  b.lengths = torch::empty({B}, torch::kLong);
  for (int64_t i = 0; i < B; ++i) {
    const auto n = static_cast<int64_t>(r.tokens[static_cast<size_t>(i)].size());
    b.tokens[i].narrow(0, 0, n).copy_(torch::tensor(r.tokens[static_cast<size_t>(i)], torch::kLong));
    b.loss_mask[i].narrow(0, 0, n).copy_(torch::tensor(r.mask[static_cast<size_t>(i)]));
    b.lengths[i] = n;
  }
  return b;
}

// The same records packed as the loader packs them (data/packing.h), with their places.
infini::Batch packed_batch(const Records& r, int64_t capacity, int64_t N, infini::PackPlan* plan_out) {
  std::vector<int64_t> lengths;
  for (const auto& t : r.tokens) lengths.push_back(static_cast<int64_t>(t.size()));
  const infini::PackPlan plan = infini::pack_records(lengths, capacity, N);
  const int64_t R = plan.rows(), T = plan.length();
  infini::Batch b;
  b.tokens = torch::zeros({R, T}, torch::kLong);
  b.loss_mask = torch::zeros({R, T});
  b.positions = torch::empty({R, T}, torch::kLong);
  std::vector<std::vector<int64_t>> starts(static_cast<size_t>(R)), lens(static_cast<size_t>(R));
  for (size_t i = 0; i < lengths.size(); ++i) {
    const auto& at = plan.places[i];
    b.tokens[at.row].narrow(0, at.offset, lengths[i]).copy_(torch::tensor(r.tokens[i], torch::kLong));
    b.loss_mask[at.row].narrow(0, at.offset, lengths[i]).copy_(torch::tensor(r.mask[i]));
    starts[static_cast<size_t>(at.row)].push_back(at.offset);
    lens[static_cast<size_t>(at.row)].push_back(lengths[i]);
  }
  for (int64_t row = 0; row < R; ++row)
    b.positions[row].copy_(torch::tensor(
        infini::row_positions(starts[static_cast<size_t>(row)], lens[static_cast<size_t>(row)], T, N), torch::kLong));
  *plan_out = plan;
  return b;
}

std::vector<torch::Tensor> take_grads(infini::Decoder& m) {
  std::vector<torch::Tensor> g;
  for (auto& p : m->parameters()) {
    g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    p.mutable_grad() = torch::Tensor();
  }
  return g;
}

class PackedRowsRules : public ::testing::TestWithParam<MemoryVariant> {};

// Records of 1 to 29 tokens with segments of 8 and rows of 40: long ones start on boundaries,
// short ones share segments, and the rows hold padding between and after records.
TEST_P(PackedRowsRules, EveryRecordGetsWhatItGetsAlone) {
  const std::vector<int64_t> lengths{29, 3, 17, 5, 1, 8, 12, 2, 7, 21, 4, 9};
  const Records rec = random_records(lengths, 40, 5);
  std::vector<infini::AttentionKernel> kernels{infini::AttentionKernel::matmul};
  if (infini::sdpa_available()) kernels.push_back(infini::AttentionKernel::sdpa);
  const auto before = infini::attention_kernel();
  for (auto kernel : kernels) {
    infini::set_attention_kernel(kernel);
    const std::string name = infini::attention_kernel_name(kernel);
    infini::Decoder m = infini::test::small_model(GetParam(), 3);
    infini::PackPlan plan;
    const infini::Batch packed = packed_batch(rec, 40, 8, &plan);
    const infini::Batch plain = unpacked_batch(rec);
    ASSERT_LT(packed.size(), plain.size());  // the point: fewer rows
    {
      torch::NoGradGuard ng;
      const torch::Tensor hp = m->trunk(packed.tokens, packed.positions);
      const torch::Tensor hu = m->trunk(plain.tokens);
      for (size_t i = 0; i < lengths.size(); ++i) {
        const auto& at = plan.places[i];
        const torch::Tensor a = hp[at.row].narrow(0, at.offset, lengths[i]);
        const torch::Tensor b = hu[static_cast<int64_t>(i)].narrow(0, 0, lengths[i]);
        EXPECT_LE((a - b).abs().max().item<double>(), 2e-5)
            << "record " << i << " (" << lengths[i] << " tokens), kernel " << name;
      }
    }
    const infini::LossOutput lp = infini::lm_loss(m, packed);
    lp.loss.backward();
    const auto gp = take_grads(m);
    const infini::LossOutput lu = infini::lm_loss(m, plain);
    lu.loss.backward();
    const auto gu = take_grads(m);
    EXPECT_EQ(lp.weight, lu.weight);
    EXPECT_NEAR(lp.loss.item<double>(), lu.loss.item<double>(), 1e-5) << name;
    for (size_t k = 0; k < gp.size(); ++k) {
      const double scale = std::max(1e-3, gu[k].abs().max().item<double>());
      EXPECT_LE((gp[k] - gu[k]).abs().max().item<double>() / scale, 2e-4) << "parameter " << k << ", kernel " << name;
    }
  }
  infini::set_attention_kernel(before);
}

INSTANTIATE_TEST_SUITE_P(Rules, PackedRowsRules, infini::test::all_memory_variants(),
                         infini::test::variant_param_name);

// data.pack through the stages: sft, reward, dpo and ppo runs log the figures of the same runs
// without it, step by step, and say how their first batch was packed.
TEST(PackedStages, EveryStageLogsTheFiguresOfItsUnpackedRun) {
  using namespace infini::test;
  const TinyRlhf& p = tiny_rlhf();
  const std::string dir = scratch_dir("packed_stages");
  const std::string common = tiny_overrides(p) + " train.max_steps=5 train.log_every=1 checkpoint.every=0";
  const std::vector<std::pair<std::string, std::string>> stages{
      {"sft", "configs/tiny/sft.yaml data.train=[" + p.dir + "/sft.jsonl] data.val=[" + p.dir +
                  "/sft.jsonl] train.eval_every=5 train.eval_batches=2 init_from="},
      {"reward", "configs/tiny/reward.yaml data.train=[" + p.pref + "] data.val=[" + p.pref_val +
                     "] train.eval_every=5 train.eval_batches=2 init_from=" + p.sft_run},
      {"dpo", "configs/tiny/dpo.yaml data.train=[" + p.pref + "] data.val=[" + p.pref_val + "] init_from=" + p.sft_run},
      // PPO (GAE with a critic, the reward model and the rule): the rollouts are packed when scored
      // and in the updates; the same rollouts come out, so the logged figures match.
      {"ppo", "configs/tiny/ppo.yaml data.train=[" + p.prompts + "] data.val=[" + p.prompts_val + "] init_from=" +
                  p.sft_run + " ppo.reward_model=" + p.reward_run + " ppo.eval_every=0"}};
  for (const auto& [stage, args] : stages) {
    std::vector<std::vector<nlohmann::json>> logs;
    for (const std::string pack : {"false", "true"}) {
      const std::string run = dir + "/" + stage + "_" + pack;
      auto r = run_infini("train " + source_path("") + args + " " + common + " run.dir=" + run + " data.pack=" + pack);
      ASSERT_EQ(r.code, 0) << stage << "\n" << r.output;
      EXPECT_EQ(r.output.find("data.pack: the first batch") != std::string::npos, pack == "true") << r.output;
      logs.push_back(records_of(run, stage == "ppo" ? "ppo" : "train"));
      for (auto& e : records_of(run, "eval")) logs.back().push_back(e);
    }
    ASSERT_EQ(logs[0].size(), logs[1].size()) << stage;
    ASSERT_GE(logs[0].size(), 5u) << stage;
    for (size_t i = 0; i < logs[0].size(); ++i) {
      std::vector<std::string> keys{"loss", "val_loss", "kl", "policy_loss", "value_loss", "reward_mean",
                                    "true_accuracy"};
      int compared = 0;
      for (const auto& key : keys) {
        if (!logs[0][i].contains(key)) continue;
        ++compared;
        EXPECT_NEAR(logs[1][i][key].get<double>(), logs[0][i][key].get<double>(), 2e-5)
            << stage << " record " << i << " " << key;
      }
      EXPECT_GT(compared, 0) << stage << " record " << i << ": " << logs[0][i].dump();
    }
  }
}

}  // namespace
