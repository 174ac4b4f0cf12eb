// Tests of core/safetensors (round trips, hand-made bytes, every malformed-file case) and of
// core/model_io (config JSON, save/load, load_weights errors). Not the model's numerics.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/model_io.h"
#include "core/safetensors.h"

// Everything of this file in its own namespace: the suite also builds as one unity translation unit.
namespace test_core_safetensors {

namespace fs = std::filesystem;
using namespace infini;

namespace {

std::string tmp_dir() {
  const char* env = std::getenv("INFINI_TEST_TMP");
  fs::path d = fs::path(env && *env ? env : "/tmp") / "test_core_safetensors";
  fs::create_directories(d);
  return d.string();
}

std::string tmp_path(const std::string& name) { return (fs::path(tmp_dir()) / name).string(); }

// A file of: 8-byte LE length of `header`, `header`, `data`.
std::string write_raw(const std::string& name, const std::string& header, const std::string& data,
                      int64_t length_override = -1) {
  std::string path = tmp_path(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  uint64_t n = length_override >= 0 ? static_cast<uint64_t>(length_override) : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << data;
  return path;
}

// Loads `path` expecting an infini::Error whose message contains the path and `needle`.
void expect_load_error(const std::string& path, const std::string& needle) {
  try {
    load_safetensors(path);
    FAIL() << "no error for " << path << ", expected: " << needle;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg << "\nexpected to contain: " << needle;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  }
}

std::string f32_bytes(std::initializer_list<float> v) {
  std::string s;
  for (float f : v) s.append(reinterpret_cast<const char*>(&f), 4);
  return s;
}

}  // namespace

TEST(Safetensors, RoundTripAllDtypes) {
  torch::manual_seed(0);
  std::map<std::string, torch::Tensor> t;
  t["f64"] = torch::randn({3, 2}, torch::kDouble);
  t["f32"] = torch::randn({2, 3, 4});
  t["f16"] = torch::randn({5}).to(torch::kHalf);
  t["bf16"] = torch::randn({4, 2}).to(torch::kBFloat16);
  t["i64"] = torch::tensor({-(int64_t(1) << 40), int64_t(7), int64_t(-3)});
  t["i32"] = torch::tensor({-5, 6, 2147483647}, torch::kInt);
  t["i16"] = torch::tensor({-300, 300}, torch::kShort);
  t["i8"] = torch::tensor({-128, 127}, torch::kChar);
  t["u8"] = torch::tensor({0, 255, 9}, torch::kByte);
  t["bool"] = torch::tensor({true, false, true});
  t["empty"] = torch::empty({0}, torch::kFloat);
  t["empty2d"] = torch::empty({3, 0}, torch::kBFloat16);
  t["scalar"] = torch::tensor(2.5);  // 0-d
  t["noncontig"] = torch::arange(12, torch::kFloat).view({3, 4}).t();
  std::map<std::string, std::string> meta{{"format", "infini"}, {"note", "ünïcode \"quoted\"\n"}};
  const std::string path = tmp_path("all.safetensors");
  save_safetensors(path, t, meta);

  SafeTensors st = load_safetensors(path);
  EXPECT_EQ(st.metadata, meta);
  ASSERT_EQ(st.tensors.size(), t.size());
  for (const auto& [name, want] : t) {
    ASSERT_TRUE(st.tensors.count(name)) << name;
    const torch::Tensor& got = st.tensors.at(name);
    EXPECT_EQ(got.scalar_type(), want.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), want.sizes()) << name;
    EXPECT_TRUE(torch::equal(got, want)) << name;
  }
  EXPECT_EQ(st.tensors.at("scalar").dim(), 0);
  EXPECT_EQ(read_safetensors_metadata(path), meta);
  // Data starts 8-byte aligned: header length is a multiple of 8.
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(fs::file_size(path), 8 + n + 3 * 2 * 8 + 24 * 4 + 5 * 2 + 8 * 2 + 3 * 8 + 3 * 4 + 2 * 2 + 2 + 3 + 3 + 4 + 12 * 4);
}

TEST(Safetensors, ReadsHandMadeFile) {
  // What any other writer (e.g. ten lines of numpy) produces: exact values from exact bytes.
  std::string data = f32_bytes({1.0f, -2.5f});
  const int64_t i64 = -7;
  data.append(reinterpret_cast<const char*>(&i64), 8);
  const std::string path = write_raw(
      "hand.safetensors",
      R"({"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}})",
      data);
  SafeTensors st = load_safetensors(path);
  EXPECT_FLOAT_EQ(st.tensors.at("a")[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(st.tensors.at("a")[1].item<float>(), -2.5f);
  EXPECT_EQ(st.tensors.at("b")[0].item<int64_t>(), -7);
  EXPECT_EQ(st.metadata.at("k"), "v");
}

// Progress of a write and a read: one call per tensor, bytes growing by each tensor's size (in
// name order, after the 8-byte length and the header), ending at the file's size.
TEST(Safetensors, ProgressCountsEveryTensorsBytes) {
  const std::string path = tmp_path("progress.safetensors");
  const std::map<std::string, torch::Tensor> tensors{{"a", torch::ones({3, 5})},
                                                     {"b", torch::zeros({7}, torch::kBFloat16)},
                                                     {"c", torch::arange(10, torch::kLong)}};
  std::vector<std::pair<uint64_t, uint64_t>> wrote, read;
  save_safetensors(path, tensors, {}, [&](uint64_t done, uint64_t total) { wrote.emplace_back(done, total); });
  const uint64_t size = fs::file_size(path);
  ASSERT_EQ(wrote.size(), 3u);
  const uint64_t header = size - (15 * 4 + 7 * 2 + 10 * 8);
  EXPECT_EQ(wrote[0], std::make_pair(header + 60, size));
  EXPECT_EQ(wrote[1], std::make_pair(header + 74, size));
  EXPECT_EQ(wrote[2], std::make_pair(size, size));
  load_safetensors(path, [&](uint64_t done, uint64_t total) { read.emplace_back(done, total); });
  EXPECT_EQ(read, wrote);
}

TEST(Safetensors, MalformedFiles) {
  const std::string ok_entry = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";
  const std::string d8 = f32_bytes({1, 2});
  {
    std::string path = tmp_path("short.safetensors");
    std::ofstream(path, std::ios::binary) << "abc";
    expect_load_error(path, "file has 3 bytes, expected at least 8");
  }
  expect_load_error(tmp_path("does_not_exist.safetensors"), "no such file");
  expect_load_error(write_raw("len_beyond.safetensors", "{}", "", 1000), "header length 1000 is beyond the file");
  expect_load_error(write_raw("len_huge.safetensors", "{}", "", int64_t(1) << 62), "is beyond the file");
  expect_load_error(write_raw("badjson.safetensors", R"({"a": {"dtype": )", ""), "header is not valid JSON");
  expect_load_error(write_raw("deep.safetensors", std::string(100000, '['), ""), "nested too deeply");
  expect_load_error(write_raw("array.safetensors", "[1, 2]", ""), "header must be a JSON object, found array");
  expect_load_error(write_raw("entry_not_obj.safetensors", R"({"a": 3})", ""), "tensor 'a': expected an object");
  expect_load_error(write_raw("dtype.safetensors", R"({"a":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})", "xx"),
                    "tensor 'a': unknown dtype \"F8\"");
  expect_load_error(write_raw("nodtype.safetensors", R"({"a":{"shape":[2],"data_offsets":[0,8]}})", d8),
                    "missing string field \"dtype\"");
  expect_load_error(write_raw("shape_str.safetensors", R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", d8),
                    "\"shape\" must be a list of non-negative integers");
  expect_load_error(write_raw("shape_neg.safetensors", R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8),
                    "\"shape\" must be a list of non-negative integers, found [-2]");
  expect_load_error(
      write_raw("shape_float.safetensors", R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", d8),
      "\"shape\" must be a list of non-negative integers");
  expect_load_error(
      write_raw("shape_overflow.safetensors",
                R"({"a":{"dtype":"F32","shape":[4611686018427387904,16],"data_offsets":[0,8]}})", d8),
      "is too large");
  // numel * 4 wraps to 0 in 64 bits: must still be refused, never read as an empty span.
  expect_load_error(
      write_raw("shape_wrap.safetensors", R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})",
                ""),
      "is too large");
  expect_load_error(write_raw("off_missing.safetensors", R"({"a":{"dtype":"F32","shape":[2]}})", d8),
                    "\"data_offsets\" must be a list of two non-negative integers");
  expect_load_error(
      write_raw("off_three.safetensors", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", d8),
      "\"data_offsets\" must be a list of two");
  expect_load_error(write_raw("off_range.safetensors", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", d8),
                    "data_offsets [8, 16] out of range: the data section has 8 bytes");
  expect_load_error(write_raw("off_order.safetensors", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", d8),
                    "data_offsets [8, 0] has begin > end");
  expect_load_error(write_raw("span.safetensors", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8),
                    "data_offsets [0, 8] span 8 bytes, but shape [3] x F32 needs 12 bytes");
  expect_load_error(write_raw("overlap.safetensors",
                              R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                              d8),
                    "tensor 'b' data_offsets [4, 8] overlap tensor 'a' [0, 8]");
  expect_load_error(write_raw("gap.safetensors", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8),
                    "gap of 4 unused bytes before tensor 'a'");
  expect_load_error(write_raw("trailing.safetensors", "{\"a\":{" + ok_entry + "}}", d8 + "zz"),
                    "tensors cover 8 bytes of the 10-byte data section");
  expect_load_error(write_raw("meta_arr.safetensors", R"({"__metadata__":[1]})", ""),
                    "__metadata__ must be an object of strings, found array");
  expect_load_error(write_raw("meta_num.safetensors", R"({"__metadata__":{"step":3}})", ""),
                    "__metadata__ key 'step' must be a string, found number");
  expect_load_error(write_raw("bool.safetensors", R"({"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})",
                              std::string("\x01\x07", 2)),
                    "tensor 'a' (BOOL) holds byte 7 at element 1, expected 0 or 1");
  // The same cases through the header-only reader.
  EXPECT_THROW(read_safetensors_metadata(tmp_path("gap.safetensors")), Error);
}

TEST(Safetensors, SaveRefusesUnsupported) {
  std::map<std::string, torch::Tensor> t{{"c", torch::zeros({2}, torch::kComplexFloat)}};
  EXPECT_THROW(save_safetensors(tmp_path("complex.safetensors"), t), Error);
}

namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.vocab_size = 32;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_hidden = 24;
  c.segment_len = 4;
  c.memory.update = MemoryUpdate::linear;
  c.memory.gradient = MemoryGradient::detach;
  c.gate_init = 0.25;
  c.norm_eps = 1e-6;
  c.rope_theta = 500.0;
  return c;
}

std::string load_weights_error(Decoder& model, SafeTensors st) {
  try {
    load_weights(model, st, "m.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(ModelIo, ConfigJsonRoundTripAndErrors) {
  ModelConfig c = tiny_config();
  nlohmann::json j = model_config_to_json(c);
  EXPECT_EQ(j["memory"]["update"], "linear");
  EXPECT_EQ(j["memory"]["gradient"], "detach");
  EXPECT_EQ(j["n_kv_heads"], 2);
  ModelConfig back = model_config_from_json(j, "f");
  EXPECT_EQ(model_config_to_json(back), j);

  auto err = [](nlohmann::json bad) {
    try {
      model_config_from_json(bad, "f.safetensors: model_config");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  nlohmann::json bad = j;
  bad["memory"]["update"] = "quadratic";
  EXPECT_EQ(err(bad), "f.safetensors: model_config key memory.update: expected \"linear\", \"delta\" or \"unit_delta\", found \"quadratic\"");
  bad = j;
  bad.erase("d_model");
  EXPECT_EQ(err(bad), "f.safetensors: model_config is missing key d_model");
  bad = j;
  bad["memory"].erase("gradient");
  EXPECT_EQ(err(bad), "f.safetensors: model_config is missing key memory.gradient");
  bad = j;
  bad["colour"] = 1;
  EXPECT_EQ(err(bad), "f.safetensors: model_config has unknown key colour");
  bad = j;
  bad["memory"]["write_gate"] = "yes";
  EXPECT_EQ(err(bad), "f.safetensors: model_config key memory.write_gate: expected true or false, found \"yes\"");
  bad = j;
  bad["memory"]["write_gate_bias"] = std::numeric_limits<double>::infinity();
  EXPECT_EQ(err(bad), "f.safetensors: model_config: model.memory.write_gate_bias must be a finite number, found inf");

  // A model file from before the write gate existed has neither of its keys: the model without one.
  nlohmann::json old = j;
  old["memory"].erase("write_gate");
  old["memory"].erase("write_gate_bias");
  ModelConfig from_old = model_config_from_json(old, "f");
  EXPECT_FALSE(from_old.memory.write_gate);
  EXPECT_EQ(from_old.memory.write_gate_bias, ModelConfig{}.memory.write_gate_bias);
  EXPECT_EQ(model_config_to_json(from_old), j);
  // The new keys round-trip.
  c.memory.update = infini::MemoryUpdate::unit_delta;
  c.memory.write_gate = true;
  c.memory.write_gate_bias = -2.5;
  nlohmann::json jg = model_config_to_json(c);
  EXPECT_EQ(jg["memory"]["update"], "unit_delta");
  EXPECT_EQ(jg["memory"]["write_gate"], true);
  EXPECT_EQ(model_config_to_json(model_config_from_json(jg, "f")), jg);
  bad = j;
  bad["n_layers"] = 1.5;
  EXPECT_EQ(err(bad), "f.safetensors: model_config key n_layers: expected an integer, found 1.5");
  bad = j;
  bad["n_heads"] = 3;
  EXPECT_NE(err(bad).find("model.d_model (16) must be divisible by model.n_heads (3)"), std::string::npos);
}

TEST(ModelIo, SaveLoadRebuildsTheModel) {
  torch::manual_seed(1);
  for (Head head : {Head::lm, Head::scalar}) {
    Decoder m(tiny_config(), head);
    const std::string path = tmp_path(head == Head::lm ? "model_lm.safetensors" : "model_scalar.safetensors");
    save_model(path, m, {{"tokenizer_path", "/x/tok.model"}});
    EXPECT_EQ(read_model_head(path), head);
    EXPECT_EQ(model_config_to_json(read_model_config(path)), model_config_to_json(tiny_config()));
    EXPECT_EQ(read_safetensors_metadata(path).at("tokenizer_path"), "/x/tok.model");
    Decoder r = load_model(path);
    EXPECT_EQ(r->head_kind(), head);
    auto a = m->named_parameters(), b = r->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
    torch::Tensor tokens = torch::randint(0, 32, {1, 9});
    torch::NoGradGuard g;
    EXPECT_TRUE(torch::equal(m->forward(tokens), r->forward(tokens)));
  }
}

TEST(ModelIo, LoadWeightsErrors) {
  torch::manual_seed(2);
  Decoder m(tiny_config());
  SafeTensors st;
  for (const auto& item : m->named_parameters()) st.tensors[item.key()] = item.value().detach().clone();
  EXPECT_EQ(load_weights_error(m, st), "(no error)");

  SafeTensors missing = st;
  missing.tensors.erase("layers.1.attention.gate");
  EXPECT_EQ(load_weights_error(m, missing), "m.safetensors: missing tensor layers.1.attention.gate (expected shape [4])");

  SafeTensors extra = st;
  extra.tensors["score.weight"] = torch::zeros({1, 16});
  EXPECT_EQ(load_weights_error(m, extra),
            "m.safetensors: unexpected tensor score.weight (shape [1, 16]) (not a parameter of this model)");

  SafeTensors shaped = st;
  shaped.tensors["layers.0.attention.wq.weight"] = torch::zeros({64, 16});
  EXPECT_EQ(load_weights_error(m, shaped),
            "m.safetensors: tensor layers.0.attention.wq.weight has shape [64, 16], expected [16, 16]");

  SafeTensors ints = st;
  ints.tensors["norm.weight"] = torch::zeros({16}, torch::kLong);
  EXPECT_EQ(load_weights_error(m, ints),
            "m.safetensors: tensor norm.weight has dtype I64, expected a floating-point dtype (F32)");

  // Non-finite weights are refused by name and count (they used to load, and infini info said ok).
  SafeTensors nan = st;
  nan.tensors["layers.1.feed_forward.w2.weight"] = st.tensors["layers.1.feed_forward.w2.weight"].clone();
  nan.tensors["layers.1.feed_forward.w2.weight"].view({-1})[3] = std::numeric_limits<float>::quiet_NaN();
  nan.tensors["layers.1.feed_forward.w2.weight"].view({-1})[7] = -std::numeric_limits<float>::infinity();
  const int64_t n = nan.tensors["layers.1.feed_forward.w2.weight"].numel();
  EXPECT_EQ(load_weights_error(m, nan),
            "m.safetensors: tensor layers.1.feed_forward.w2.weight has 2 non-finite values (NaN or Inf) of " + std::to_string(n) +
                "; the weights are corrupt or were saved after training diverged");

  // A file of another model (no memory -> no gates) names what is missing.
  ModelConfig nomem = tiny_config();
  nomem.memory.enabled = false;
  Decoder other(nomem);
  SafeTensors o;
  for (const auto& item : other->named_parameters()) o.tensors[item.key()] = item.value().detach();
  EXPECT_NE(load_weights_error(m, o).find("missing tensors layers.0.attention.gate (expected shape [4]), "
                                          "layers.1.attention.gate"),
            std::string::npos);

  // load_model on a file that is not ours.
  const std::string path = tmp_path("plain.safetensors");
  save_safetensors(path, st.tensors, {});
  try {
    load_model(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": metadata has no 'format' (not a model file written by infini?)");
  }
}
}  // namespace test_core_safetensors
