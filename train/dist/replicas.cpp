// Replica broadcast and check (see replicas.h).
#include "train/dist/replicas.h"

#include <cstring>

#include <fmt/format.h>
#include <torch/torch.h>

namespace infini {

void broadcast_from_rank0(Comm& comm, torch::nn::Module& model) {
  if (!comm.distributed()) return;
  torch::NoGradGuard ng;
  for (auto& item : model.named_parameters(true)) {
    torch::Tensor host = item.value().detach().to(torch::kCPU).contiguous();
    comm.broadcast(host, "the weight broadcast (" + item.key() + ")");
    item.value().detach().copy_(host);
  }
  for (auto& item : model.named_buffers(true)) {
    torch::Tensor host = item.value().to(torch::kCPU).contiguous();
    comm.broadcast(host, "the buffer broadcast (" + item.key() + ")");
    item.value().copy_(host);
  }
}

void check_replicas_equal(Comm& comm, const torch::nn::Module& model, const std::string& when) {
  if (!comm.distributed()) return;
  // FNV-1a over 8-byte words of every tensor's bytes, in the module's order.
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const torch::Tensor& t) {
    const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const auto* p = static_cast<const unsigned char*>(c.data_ptr());
    const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * 1099511628211ULL;
    }
    for (; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  };
  for (const auto& item : model.named_parameters(true)) mix(item.value());
  for (const auto& item : model.named_buffers(true)) mix(item.value());
  const std::vector<std::string> all = comm.all_gather("weights_hash", fmt::format("{:016x}", h));
  std::vector<int> differ;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differ.push_back(static_cast<int>(r));
  if (!differ.empty())
    throw Error(fmt::format("the weights of rank(s) {} differ from rank 0's {}: every rank must load the same files "
                            "(a shared file system)", fmt::join(differ, ", "), when));
}

}  // namespace infini
