// Token shards: writing with a patched header, reading through mmap with full validation.
// Not batching: data/loader.cpp cuts the shards into rows.
#include "data/token_shards.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "core/error.h"

namespace infini {
namespace {

void put_u32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }  // little-endian hosts only (x86, arm64)
void put_u64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get_u32(const unsigned char* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
uint64_t get_u64(const unsigned char* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

}  // namespace

ShardWriter::ShardWriter(const std::string& path, int64_t vocab_size)
    : path_(path), vocab_size_(vocab_size), bytes_per_token_(vocab_size <= 65536 ? 2 : 4) {
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw Error(fmt::format("{}: cannot open for writing ({})", path, std::strerror(errno)));
  char header[kShardHeaderBytes] = {0};
  std::fwrite(header, 1, sizeof(header), f_);  // patched by finish()
}

ShardWriter::~ShardWriter() {
  if (f_) std::fclose(f_);
}

void ShardWriter::append(const int* ids, size_t n) {
  buf_.resize(n * bytes_per_token_);
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size_)
      throw Error(fmt::format("{}: token id {} out of range [0, {})", path_, ids[i], vocab_size_));
    if (bytes_per_token_ == 2) {
      const uint16_t v = static_cast<uint16_t>(ids[i]);
      std::memcpy(&buf_[i * 2], &v, 2);
    } else {
      const uint32_t v = static_cast<uint32_t>(ids[i]);
      std::memcpy(&buf_[i * 4], &v, 4);
    }
  }
  if (std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size())
    throw Error(fmt::format("{}: write failed ({})", path_, std::strerror(errno)));
  count_ += static_cast<int64_t>(n);
}

void ShardWriter::finish() {
  char header[kShardHeaderBytes] = {0};
  std::memcpy(header, kShardMagic, 8);
  put_u32(header + 8, kShardVersion);
  put_u32(header + 12, bytes_per_token_);
  put_u64(header + 16, static_cast<uint64_t>(count_));
  put_u64(header + 24, static_cast<uint64_t>(vocab_size_));
  if (std::fseek(f_, 0, SEEK_SET) != 0 || std::fwrite(header, 1, sizeof(header), f_) != sizeof(header) ||
      std::fclose(f_) != 0) {
    f_ = nullptr;
    throw Error(fmt::format("{}: write failed ({})", path_, std::strerror(errno)));
  }
  f_ = nullptr;
}

TokenShard::TokenShard(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(fmt::format("token shard {}: cannot open ({})", path, std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(fmt::format("token shard {}: cannot stat", path));
  }
  const size_t bytes = static_cast<size_t>(st.st_size);
  if (bytes < kShardHeaderBytes) {
    ::close(fd);
    throw Error(fmt::format("token shard {}: truncated: {} bytes, shorter than the {}-byte header", path, bytes,
                            kShardHeaderBytes));
  }
  void* m = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) throw Error(fmt::format("token shard {}: mmap failed ({})", path, std::strerror(errno)));
  map_ = static_cast<const unsigned char*>(m);
  map_bytes_ = bytes;
  try {
    if (std::memcmp(map_, kShardMagic, 8) != 0)
      throw Error(fmt::format("token shard {}: bad magic (expected \"INFTOKS\", not a file from `infini data prepare`)", path));
    const uint32_t version = get_u32(map_ + 8);
    if (version != kShardVersion)
      throw Error(fmt::format("token shard {}: format version {} (this build reads version {})", path, version,
                              kShardVersion));
    bytes_per_token_ = get_u32(map_ + 12);
    if (bytes_per_token_ != 2 && bytes_per_token_ != 4)
      throw Error(fmt::format("token shard {}: bytes per token is {} (expected 2 or 4)", path, bytes_per_token_));
    num_tokens_ = static_cast<int64_t>(get_u64(map_ + 16));
    vocab_size_ = static_cast<int64_t>(get_u64(map_ + 24));
    const uint64_t expect = kShardHeaderBytes + static_cast<uint64_t>(num_tokens_) * bytes_per_token_;
    if (num_tokens_ < 0 || expect != bytes)
      throw Error(fmt::format("token shard {}: header says {} tokens ({} bytes) but the file has {} bytes{}", path,
                              num_tokens_, expect, bytes, expect > bytes ? " (truncated)" : ""));
    // One pass over the ids: a bad id here would otherwise index past the embedding in the trainer.
    for (int64_t i = 0; i < num_tokens_; ++i) {
      const uint64_t id = bytes_per_token_ == 2
                              ? static_cast<uint64_t>(map_[kShardHeaderBytes + 2 * i] | (map_[kShardHeaderBytes + 2 * i + 1] << 8))
                              : get_u32(map_ + kShardHeaderBytes + 4 * i);
      if (id >= static_cast<uint64_t>(vocab_size_))
        throw Error(fmt::format("token shard {}: token {} has id {} >= vocab_size {}", path, i, id, vocab_size_));
    }
  } catch (...) {
    ::munmap(const_cast<unsigned char*>(map_), map_bytes_);
    map_ = nullptr;
    throw;
  }
}

TokenShard::~TokenShard() {
  if (map_) ::munmap(const_cast<unsigned char*>(map_), map_bytes_);
}

void TokenShard::read(int64_t start, int64_t n, int64_t* out) const {
  TORCH_CHECK(start >= 0 && n >= 0 && start + n <= num_tokens_, "TokenShard::read out of range");
  const unsigned char* p = map_ + kShardHeaderBytes + start * bytes_per_token_;
  if (bytes_per_token_ == 2) {
    for (int64_t i = 0; i < n; ++i) out[i] = p[2 * i] | (p[2 * i + 1] << 8);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = get_u32(p + 4 * i);
  }
}

ShardIndex read_shard_index(const std::string& dir) {
  const std::string path = dir + "/index.json";
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot open (is {} a directory made by `infini data prepare`?)", path, dir));
  ShardIndex idx;
  idx.dir = dir;
  try {
    idx.raw = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number too large
    throw Error(fmt::format("{}: malformed JSON: {}", path, e.what()));
  }
  const auto& j = idx.raw;
  auto need = [&](const char* key, bool (nlohmann::json::*is)() const noexcept, const char* type) -> const nlohmann::json& {
    if (!j.is_object() || !j.contains(key)) throw Error(fmt::format("{}: missing key \"{}\"", path, key));
    if (!(j.at(key).*is)()) throw Error(fmt::format("{}: key \"{}\" must be {}, found {}", path, key, type, j.at(key).type_name()));
    return j.at(key);
  };
  if (need("format", &nlohmann::json::is_string, "a string").get<std::string>() != "infini-token-shards")
    throw Error(fmt::format("{}: \"format\" is not \"infini-token-shards\"", path));
  const int64_t version = need("version", &nlohmann::json::is_number_integer, "an integer").get<int64_t>();
  if (version != 1) throw Error(fmt::format("{}: index version {} (this build reads version 1)", path, version));
  idx.vocab_size = need("vocab_size", &nlohmann::json::is_number_integer, "an integer").get<int64_t>();
  if (idx.vocab_size < 1)
    throw Error(fmt::format("{}: key \"vocab_size\" must be >= 1, found {}", path, idx.vocab_size));
  for (const char* key : {"bos_id", "eos_id"}) {  // ids of the vocabulary (a wrapped int would pass)
    const int64_t id = need(key, &nlohmann::json::is_number_integer, "an integer").get<int64_t>();
    if (id < 0 || id >= idx.vocab_size)
      throw Error(fmt::format("{}: key \"{}\" must be a token id in [0, {}), found {}", path, key, idx.vocab_size, id));
    (std::string(key) == "bos_id" ? idx.bos_id : idx.eos_id) = static_cast<int>(id);
  }
  if (j.contains("tokenizer") && j["tokenizer"].is_string()) idx.tokenizer = j["tokenizer"];
  if (j.contains("tokenizer_hash") && j["tokenizer_hash"].is_string()) idx.tokenizer_hash = j["tokenizer_hash"];
  for (const char* split : {"train", "val"}) {
    const auto& arr = need(split, &nlohmann::json::is_array, "an array");
    auto& files = std::string(split) == "train" ? idx.train_files : idx.val_files;
    auto& counts = std::string(split) == "train" ? idx.train_tokens : idx.val_tokens;
    for (const auto& e : arr) {
      if (!e.is_object() || !e.contains("file") || !e["file"].is_string())
        throw Error(fmt::format("{}: every entry of \"{}\" needs a \"file\" string", path, split));
      files.push_back(dir + "/" + e["file"].get<std::string>());
      if (e.contains("tokens") && !e["tokens"].is_number_integer())
        throw Error(fmt::format("{}: \"tokens\" of {} must be an integer, found {}", path, e["file"].get<std::string>(),
                                e["tokens"].type_name()));
      counts.push_back(e.contains("tokens") ? e["tokens"].get<int64_t>() : -1);
    }
  }
  return idx;
}

}  // namespace infini
