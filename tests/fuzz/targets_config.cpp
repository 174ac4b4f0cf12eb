// Fuzz target: the YAML config loader with `base:` chains and key=value overrides
// (train/config/config.h). Input: the YAML text, then optionally a '\0' byte and override lines.
// Property: a config that loads prints (config_to_yaml) to YAML that loads back equal.
// Not the stages' use of a config (no files it names are opened).
#include <string>
#include <vector>

#include "tests/fuzz/targets.h"
#include "train/config/config.h"

namespace infini::fuzz {

namespace config_target {

// Bases an input can name: a plain one, a chain of two, and a cycle.
void write_bases(const std::string& dir) {
  const std::string base =
      "model: {vocab_size: 320, d_model: 32, n_layers: 1, n_heads: 2, n_kv_heads: 1, segment_len: 8}\n"
      "data: {train: [shards], seq_len: 32, prefetch: 0}\n"
      "train: {max_steps: 3, batch_size: 2}\n";
  const std::string chain = "base: base.yaml\nrun: {seed: 3}\noptim: {lr: 1.0e-3}\n";
  const std::string cycle = "base: cycle.yaml\n";
  write_scratch("config/base.yaml", reinterpret_cast<const uint8_t*>(base.data()), base.size());
  write_scratch("config/chain.yaml", reinterpret_cast<const uint8_t*>(chain.data()), chain.size());
  write_scratch("config/cycle.yaml", reinterpret_cast<const uint8_t*>(cycle.data()), cycle.size());
}

}  // namespace config_target

Outcome fuzz_config(const uint8_t* data, size_t size) {
  static const bool bases = (config_target::write_bases(scratch_dir()), true);
  (void)bases;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t sep = input.find('\0');
  const std::string yaml = input.substr(0, sep);
  std::vector<std::string> overrides;
  if (sep != std::string::npos) {
    size_t start = sep + 1;
    while (start <= input.size() && overrides.size() < 16) {
      size_t end = input.find('\n', start);
      if (end == std::string::npos) end = input.size();
      if (end > start) overrides.push_back(input.substr(start, end - start));
      start = end + 1;
    }
  }
  const std::string source = scratch_dir() + "/config/config.yaml";
  return guarded([&](Outcome& o) {
    const Config c = parse_config(yaml, source, overrides);
    o.accepted = true;
    std::string printed;
    try {
      printed = config_to_yaml(c);
      const Config back = parse_config(printed, scratch_dir() + "/config/printed.yaml");
      if (!configs_equal(c, back)) o.finding = "config_to_yaml does not load back equal:\n" + printed;
    } catch (const std::exception& e) {
      o.finding = std::string("config_to_yaml of an accepted config does not load back: ") + e.what() + "\n" + printed;
    }
  });
}

}  // namespace infini::fuzz
