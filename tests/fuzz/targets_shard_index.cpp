// Fuzz target: index.json of a token shard folder (data/token_shards.h), then, when every file it
// names is a plain name in the folder, the loader over it (data/loader.h) and its first batch, as
// training opens a prepared corpus. The folder holds two valid shards of a 320-token vocabulary,
// train_000.bin (301 tokens) and val_000.bin (61 tokens). Properties: an accepted index lists one
// token count per file; a batch's ids are below the loader's vocab_size.
// Not the preparation of shards (data/prepare.h).
#include <filesystem>
#include <string>
#include <vector>

#include "data/loader.h"
#include "data/token_shards.h"
#include "tests/fuzz/targets.h"

namespace fs = std::filesystem;

namespace infini::fuzz {

namespace shard_index_target {

void write_shard(const std::string& path, int n) {
  ShardWriter w(path, 320);
  std::vector<int> ids(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = (i * 7) % 320;
  w.append(ids.data(), ids.size());
  w.finish();
}

bool plain_names(const ShardIndex& idx) {
  for (const auto* files : {&idx.train_files, &idx.val_files})
    for (const std::string& f : *files) {
      const std::string name = f.substr(idx.dir.size() + 1);
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
          name.find('\0') != std::string::npos)
        return false;
    }
  return true;
}

}  // namespace shard_index_target

Outcome fuzz_shard_index(const uint8_t* data, size_t size) {
  const std::string dir = scratch_dir() + "/shards";
  static const bool shards = (fs::create_directories(dir), shard_index_target::write_shard(dir + "/train_000.bin", 301),
                              shard_index_target::write_shard(dir + "/val_000.bin", 61), true);
  (void)shards;
  write_scratch("shards/index.json", data, size);
  return guarded([&](Outcome& o) {
    const ShardIndex idx = read_shard_index(dir);
    if (idx.train_files.size() != idx.train_tokens.size() || idx.val_files.size() != idx.val_tokens.size()) {
      o.finding = "an accepted index has a file list and a token count list of different lengths";
      return;
    }
    if (!shard_index_target::plain_names(idx)) {
      o.accepted = true;
      return;
    }
    DataConfig cfg;
    cfg.train = {dir};
    cfg.seq_len = 16;
    cfg.prefetch = 0;
    Loader train(cfg, Split::train, nullptr, 2, 0);
    if (Loader::has_split(cfg, Split::val)) Loader val(cfg, Split::val, nullptr, 2, 0);
    const Batch b = train.next();
    o.accepted = true;
    if (b.tokens.max().item<int64_t>() >= train.vocab_size())
      o.finding = "a batch holds token id " + std::to_string(b.tokens.max().item<int64_t>()) +
                  ", but the loader's vocab_size (ids in the data are below it) is " + std::to_string(train.vocab_size());
  });
}

}  // namespace infini::fuzz
