// Token shards: the on-disk format of a prepared corpus (DIR/index.json + DIR/*.bin) and its reader.
// Not the preparation itself (data/prepare.h) nor batching (data/loader.h).
//
// A shard file: a 32-byte little-endian header, then the tokens.
//   char     magic[8]        "INFTOKS\0"
//   uint32   version         1
//   uint32   bytes_per_token 2 (uint16, vocab <= 65536) or 4 (uint32)
//   uint64   num_tokens
//   uint64   vocab_size      every id is < vocab_size
// index.json: {"format": "infini-token-shards", "version": 1, "vocab_size", "bos_id", "eos_id",
//   "tokenizer", "tokenizer_hash", "train": [{"file", "tokens", "documents"}], "val": [...], ...}
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace infini {

constexpr char kShardMagic[8] = {'I', 'N', 'F', 'T', 'O', 'K', 'S', '\0'};
constexpr uint32_t kShardVersion = 1;
constexpr size_t kShardHeaderBytes = 32;

// Streams tokens into one shard file; finish() patches the header's count and closes it.
class ShardWriter {
 public:
  ShardWriter(const std::string& path, int64_t vocab_size);
  ~ShardWriter();
  void append(const int* ids, size_t n);
  void finish();
  int64_t num_tokens() const { return count_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  int64_t vocab_size_ = 0, count_ = 0;
  uint32_t bytes_per_token_ = 2;
  std::vector<char> buf_;
};

// A read-only, memory-mapped shard, validated on open (magic, version, size, every id < vocab).
class TokenShard {
 public:
  explicit TokenShard(const std::string& path);
  ~TokenShard();
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;
  int64_t size() const { return num_tokens_; }
  int64_t vocab_size() const { return vocab_size_; }
  // Copies tokens [start, start + n) into out as int64.
  void read(int64_t start, int64_t n, int64_t* out) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const unsigned char* map_ = nullptr;
  size_t map_bytes_ = 0;
  int64_t num_tokens_ = 0, vocab_size_ = 0;
  uint32_t bytes_per_token_ = 2;
};

// index.json of a shard directory, validated (throws infini::Error naming the file and key).
struct ShardIndex {
  std::string dir;
  int64_t vocab_size = 0;
  int bos_id = -1, eos_id = -1;
  std::string tokenizer, tokenizer_hash;
  std::vector<std::string> train_files, val_files;  // full paths
  std::vector<int64_t> train_tokens, val_tokens;    // tokens per file as the index records them (-1: not recorded)
  nlohmann::json raw;
};
ShardIndex read_shard_index(const std::string& dir);

}  // namespace infini
