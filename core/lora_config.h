// LoraConfig: low-rank adapters (LoRA) on a decoder's projections, a plain struct with commented
// defaults. Not the adapters themselves (core/linear.h) nor what trains (train/run/trainable.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace infini {

// The projections an adapter can sit on, as the blocks name them.
inline const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
  return names;
}

struct LoraConfig {
  int64_t rank = 0;       // r of every adapter; 0 = off (every weight trains)
  double alpha = 16.0;    // an adapter adds (alpha / r) B A x to the projection's x W^T
  double dropout = 0.0;   // dropout on the adapters' input (training only)
  std::vector<std::string> targets = lora_target_names();  // projections that get an adapter
  bool base_bf16 = false;  // the frozen projections stored in bf16 (half their memory); adapters fp32

  bool enabled() const { return rank > 0; }
  double scale() const { return alpha / static_cast<double>(rank); }
  // "" when consistent, else one sentence naming the key ("lora.targets: ...").
  std::string validate() const;
};

template <class V> void visit_fields(LoraConfig& c, V& v) {
  v("rank", c.rank, "adapter rank r; 0 = off (full fine-tuning)");
  v("alpha", c.alpha, "adapters scaled by alpha / rank");
  v("dropout", c.dropout, "dropout on the adapters' input");
  v("targets", c.targets, "projections with an adapter: wq wk wv wo w1 w2 w3");
  v("base_bf16", c.base_bf16, "frozen projections kept in bf16");
}

}  // namespace infini
