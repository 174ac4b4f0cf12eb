// prepare_trainable (see trainable.h).
#include "train/run/trainable.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "core/lora.h"
#include "train/run/checkpoint.h"

namespace infini {

void prepare_trainable(Decoder& model, const Config& cfg, const char* what) {
  if (cfg.lora.enabled()) {
    add_lora_adapters(model, cfg.lora);
    int64_t trained = 0, total = 0;
    for (auto& item : model->named_parameters(true)) {
      const bool train = is_lora_tensor(item.key());
      item.value().set_requires_grad(train);
      total += item.value().numel();
      if (train) trained += item.value().numel();
    }
    spdlog::info("lora: rank {} (alpha {}) on {}{}: {} of the {}'s {} parameters train ({:.2f}%), the rest frozen",
                 cfg.lora.rank, cfg.lora.alpha, fmt::join(cfg.lora.targets, " "),
                 cfg.lora.base_bf16 ? ", base projections in bf16" : "", trained, what, total,
                 100.0 * static_cast<double>(trained) / static_cast<double>(total));
    return;
  }
  if (cfg.optim.freeze_layers > 0) {
    for (auto& item : model->named_parameters(true)) {
      const int64_t block = block_index(item.key());
      if (item.key().rfind("tok_embeddings.", 0) == 0 || (block >= 0 && block < cfg.optim.freeze_layers))
        item.value().set_requires_grad(false);
    }
    spdlog::info("optim.freeze_layers: the embedding and blocks 0-{} of the {} are frozen", cfg.optim.freeze_layers - 1,
                 what);
  }
}

}  // namespace infini
