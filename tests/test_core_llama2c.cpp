// Tests of the llama2.c import (synthetic files with known layout, bad headers, stories260K greedy
// output against llama2.c's reference ids) and of the convert / generate / info CLI on it.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/generate.h"
#include "core/llama2c.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_core_llama2c {

namespace fs = std::filesystem;
using namespace infini;

namespace {

const std::string kStories = INFINI_SOURCE_DIR "/../shared/data/llama2c/stories260K.bin";

// llama2.c's run.c, greedy from BOS (README of the reference data).
const std::string kReferenceIds =
    "1 403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 "
    "282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 266 267 337 335 312 432 398 312 286 "
    "267 414 270 333 415 426 13 438 310";

std::string tmp_dir(const std::string& sub) {
  const char* env = std::getenv("INFINI_TEST_TMP");
  fs::path d = fs::path(env && *env ? env : "/tmp") / "test_core_llama2c" / sub;
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::string write_file(const std::string& path, const std::vector<int32_t>& header, const std::vector<float>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(header.data()), static_cast<std::streamsize>(header.size() * 4));
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * 4));
  return path;
}

std::string read_error(const std::string& path) {
  try {
    read_llama2c(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Runs a shell command; returns its exit code, stdout in *out.
int run(const std::string& cmd, std::string* out) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  out->clear();
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out->append(buf.data(), n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string join(const std::vector<int64_t>& ids) {
  std::ostringstream s;
  for (size_t i = 0; i < ids.size(); ++i) s << (i ? " " : "") << ids[i];
  return s.str();
}

}  // namespace

// dim 8, hidden 12, 1 layer, 2 heads, 1 kv head, vocab -16 (untied classifier), seq_len 4.
// Each float is its own index, so every tensor's first element names its offset in the file.
TEST(Llama2c, SyntheticLayoutUntied) {
  const int D = 8, F = 12, L = 1, V = 16, S = 4, kv = 4, hs = 4;
  const int n = V * D + L * D + L * D * D + 2 * L * kv * D + L * D * D + L * D + 3 * L * F * D + D + S * hs + V * D;
  std::vector<float> data(n);
  for (int i = 0; i < n; ++i) data[i] = static_cast<float>(i);
  const std::string path = write_file(tmp_dir("synthetic") + "/m.bin", {D, F, L, 2, 1, -V, S}, data);
  Llama2cCheckpoint ck = read_llama2c(path);
  EXPECT_FALSE(ck.config.tie_embeddings);
  EXPECT_FALSE(ck.config.memory.enabled);
  EXPECT_EQ(ck.config.segment_len, 4);
  EXPECT_EQ(ck.config.vocab_size, 16);
  EXPECT_EQ(ck.config.kv_heads(), 1);
  EXPECT_EQ(ck.config.ffn_dim(), 12);
  EXPECT_DOUBLE_EQ(ck.config.norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(ck.config.rope_theta, 10000.0);
  auto first = [&](const std::string& name) { return ck.weights.at(name).flatten()[0].item<float>(); };
  int off = 0;
  EXPECT_EQ(first("tok_embeddings.weight"), off); off += V * D;
  EXPECT_EQ(first("layers.0.attention_norm.weight"), off); off += D;
  EXPECT_EQ(first("layers.0.attention.wq.weight"), off); off += D * D;
  EXPECT_EQ(first("layers.0.attention.wk.weight"), off); off += kv * D;
  EXPECT_EQ(first("layers.0.attention.wv.weight"), off); off += kv * D;
  EXPECT_EQ(first("layers.0.attention.wo.weight"), off); off += D * D;
  EXPECT_EQ(first("layers.0.ffn_norm.weight"), off); off += D;
  EXPECT_EQ(first("layers.0.feed_forward.w1.weight"), off); off += F * D;
  EXPECT_EQ(first("layers.0.feed_forward.w2.weight"), off); off += D * F;
  EXPECT_EQ(first("layers.0.feed_forward.w3.weight"), off); off += F * D;
  EXPECT_EQ(first("norm.weight"), off); off += D + S * hs;  // RoPE tables skipped
  EXPECT_EQ(first("output.weight"), off);
  EXPECT_EQ(ck.weights.at("layers.0.attention.wk.weight").sizes(), (std::vector<int64_t>{4, 8}));
  // (out, in) as torch.nn.Linear: row 1 of wq starts D floats after row 0.
  EXPECT_EQ(ck.weights.at("layers.0.attention.wq.weight")[1][0].item<float>(), V * D + L * D + D);
  EXPECT_EQ(ck.weights.at("layers.0.feed_forward.w2.weight").sizes(), (std::vector<int64_t>{8, 12}));
  EXPECT_EQ(ck.weights.size(), 12u);
  Decoder m = import_llama2c(path);
  EXPECT_TRUE(torch::equal(m->output->weight, ck.weights.at("output.weight")));
}

TEST(Llama2c, BadFiles) {
  const std::string dir = tmp_dir("bad");
  const std::vector<float> none;
  {
    std::ofstream(dir + "/short.bin") << "0123456789";
    EXPECT_EQ(read_error(dir + "/short.bin"),
              dir + "/short.bin: file has 10 bytes, a llama2.c checkpoint starts with a 28-byte header");
  }
  EXPECT_EQ(read_error(dir + "/absent.bin"), dir + "/absent.bin: no such file");
  std::string p = write_file(dir + "/heads.bin", {64, 172, 5, 3, 1, 512, 512}, none);
  EXPECT_EQ(read_error(p), p + ": not a legacy llama2.c checkpoint: n_heads must be >= 1 and divide dim (header "
                               "dim=64, hidden_dim=172, n_layers=5, n_heads=3, n_kv_heads=1, vocab_size=512, seq_len=512)");
  p = write_file(dir + "/kv.bin", {64, 172, 5, 8, 3, 512, 512}, none);
  EXPECT_NE(read_error(p).find("n_kv_heads must be >= 1 and divide n_heads"), std::string::npos);
  p = write_file(dir + "/neg.bin", {-64, 172, 5, 8, 4, 512, 512}, none);
  EXPECT_NE(read_error(p).find("dim must be in [2, 65536]"), std::string::npos);
  p = write_file(dir + "/vocab0.bin", {64, 172, 5, 8, 4, 0, 512}, none);
  EXPECT_NE(read_error(p).find("vocab_size must be non-zero"), std::string::npos);
  p = write_file(dir + "/magic.bin", {0x616b3432, 1, 0, 0, 0, 0, 0}, none);
  EXPECT_NE(read_error(p).find("versioned llama2.c export (magic \"ak42\")"), std::string::npos);
  // A right header with too few floats: the stories260K header over 100 floats.
  p = write_file(dir + "/trunc.bin", {64, 172, 5, 8, 4, 512, 512}, std::vector<float>(100, 0.f));
  EXPECT_EQ(read_error(p), p + ": file has 428 bytes, expected 1056540 for dim=64, hidden_dim=172, n_layers=5, "
                               "n_heads=8, n_kv_heads=4, vocab_size=512, seq_len=512 (truncated?)");
  // NaN weights are refused.
  // emb 4x2, rms_att 2, wq/wk/wv/wo 4 x 2x2, rms_ffn 2, w1/w2/w3 3 x 2x2, rms_final 2, RoPE 1x2.
  const int n = 8 + 2 + 16 + 2 + 12 + 2 + 2;
  std::vector<float> nan(n, 0.5f);
  nan[3] = std::nanf("");
  p = write_file(dir + "/nan.bin", {2, 2, 1, 1, 1, 4, 1}, nan);
  EXPECT_EQ(read_error(p), p + ": weight tok_embeddings.weight holds NaN or infinite values");
}

TEST(Llama2c, Stories260KGreedyMatchesReference) {
  if (!fs::exists(kStories)) GTEST_SKIP() << "reference data absent: " << kStories;
  Decoder m = import_llama2c(kStories);
  EXPECT_EQ(m->config().segment_len, 512);
  EXPECT_TRUE(m->config().tie_embeddings);
  EXPECT_EQ(m->config().kv_heads(), 4);
  GenerateOptions opts;
  opts.sampling.temperature = 0;
  opts.max_new_tokens = 64;
  EXPECT_EQ(join(generate(m, {1}, opts)), kReferenceIds);
}

TEST(Llama2c, ConvertGenerateInfoCli) {
  if (!fs::exists(kStories)) GTEST_SKIP() << "reference data absent: " << kStories;
  const std::string dir = tmp_dir("cli");
  const std::string bin = INFINI_BINARY;
  std::string out;
  // With a progress line at every update: MB read of the .bin's 1056540 bytes, then MB written.
  ASSERT_EQ(run("INFINI_PROGRESS_SECONDS=0 " + bin + " convert llama2c --model " + kStories + " --out " + dir +
                    "/run 2>" + dir + "/progress.txt", &out), 0) << out;
  EXPECT_NE(out.find("step_00000000 (260032 parameters"), std::string::npos) << out;
  std::ifstream progress_file(dir + "/progress.txt");
  const std::string progress((std::istreambuf_iterator<char>(progress_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(progress.find("convert llama2c: 1.1/1.1 MB (100%), "), std::string::npos) << progress;
  EXPECT_NE(progress.find(", reading " + kStories), std::string::npos) << progress;
  EXPECT_NE(progress.find(", writing " + dir + "/run"), std::string::npos) << progress;
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  read_llama2c(kStories, [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); });
  ASSERT_EQ(calls.size(), 1u);  // under 16 MiB: one piece
  EXPECT_EQ(calls[0], std::make_pair(uint64_t{1056540}, uint64_t{1056540}));
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/step_00000000/model.safetensors"));
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/step_00000000/trainer_state.json"));

  ASSERT_EQ(run(bin + " generate --checkpoint " + dir +
                    "/run --prompt-ids \"1\" --temperature 0 --max-new-tokens 64 --print-ids --threads 1",
                &out),
            0);
  EXPECT_EQ(out, kReferenceIds + "\n");
  // --stats: the count and a rate on stderr, the ids on stdout unchanged.
  ASSERT_EQ(run(bin + " generate --checkpoint " + dir +
                    "/run --prompt-ids \"1\" --temperature 0 --max-new-tokens 64 --print-ids --threads 1 --stats "
                    "2>&1 >/dev/null",
                &out),
            0);
  EXPECT_EQ(out.rfind("generated 64 tokens; ", 0), 0u) << out;
  EXPECT_NE(out.find(" tokens/s after the first\n"), std::string::npos) << out;

  // Sampling is reproducible from the seed through the CLI as well.
  std::string a, b;
  const std::string sample = bin + " generate --checkpoint " + dir +
                             "/run --prompt-ids \"1 403\" --temperature 0.9 --top-p 0.9 --seed 7 --max-new-tokens 20 "
                             "--print-ids --threads 1";
  ASSERT_EQ(run(sample, &a), 0);
  ASSERT_EQ(run(sample, &b), 0);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.rfind("1 403 ", 0), 0u) << a;

  ASSERT_EQ(run(bin + " info " + dir + "/run", &out), 0) << out;
  EXPECT_NE(out.find("parameters: 260032"), std::string::npos) << out;
  EXPECT_NE(out.find("origin: llama2.c " + fs::absolute(kStories).string()), std::string::npos) << out;
  EXPECT_NE(out.find("layers.0.attention.wk.weight"), std::string::npos) << out;
  EXPECT_NE(out.find("F32  [32, 64]"), std::string::npos) << out;
  EXPECT_NE(out.find("integrity: ok"), std::string::npos) << out;

  // Errors: one line on stderr and exit 1.
  EXPECT_EQ(run(bin + " generate --checkpoint " + dir + "/run --prompt-ids \"1 x\" 2>&1", &out), 1);
  EXPECT_EQ(out, "error: --prompt-ids: 'x' is not a token id (expected integers like \"1 403 407\")\n");
  EXPECT_EQ(run(bin + " generate --checkpoint " + dir + "/run --prompt-ids \"1 999\" 2>&1", &out), 1);
  EXPECT_EQ(out, "error: prompt token 999 (position 1) is outside the vocabulary [0, 512)\n");
  EXPECT_EQ(run(bin + " convert llama2c --model " + dir + "/run/checkpoints/latest --out " + dir + "/x 2>&1", &out), 1);
  EXPECT_NE(out.find("a llama2.c checkpoint starts with a 28-byte header"), std::string::npos) << out;
  // A damaged model file: info reports it.
  fs::resize_file(dir + "/run/checkpoints/step_00000000/model.safetensors", 5000);
  EXPECT_EQ(run(bin + " info " + dir + "/run 2>&1", &out), 1);
  EXPECT_NE(out.find("error: "), std::string::npos) << out;
  EXPECT_NE(out.find("model.safetensors"), std::string::npos) << out;
}

// convert into an existing run directory used to repoint its checkpoints/latest at the import:
// a non-empty --out is refused (exit 2, nothing written) unless --force; the check comes before
// the model file is read.
TEST(Llama2c, ConvertRefusesANonEmptyOut) {
  const std::string dir = tmp_dir("convert_out");
  fs::create_directories(dir + "/run/checkpoints");
  std::ofstream(dir + "/run/checkpoints/latest") << "step_00000040\n";
  const std::string bin = INFINI_BINARY;
  std::string out;
  EXPECT_EQ(run(bin + " convert llama2c --model " + dir + "/none.bin --out " + dir + "/run 2>&1", &out), 2);
  EXPECT_EQ(out, "error: --out " + dir + "/run: exists and is not an empty folder (a run directory?); choose a new "
                 "folder, or add --force to write step 0 into it\n");
  std::ifstream in(dir + "/run/checkpoints/latest");
  std::string latest;
  std::getline(in, latest);
  EXPECT_EQ(latest, "step_00000040");
  // With --force the destination check is passed (here the missing model is the error); an empty
  // folder is accepted as it is.
  EXPECT_EQ(run(bin + " convert llama2c --model " + dir + "/none.bin --out " + dir + "/run --force 2>&1", &out), 1);
  EXPECT_NE(out.find("none.bin"), std::string::npos) << out;
  fs::create_directories(dir + "/empty");
  EXPECT_EQ(run(bin + " convert llama2c --model " + dir + "/none.bin --out " + dir + "/empty 2>&1", &out), 1);
  EXPECT_NE(out.find("none.bin"), std::string::npos) << out;
}
}  // namespace test_core_llama2c
