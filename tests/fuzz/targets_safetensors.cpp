// Fuzz target: safetensors header parsing and reading (core/safetensors.h). Input: a whole file.
// Properties: read_safetensors_metadata and load_safetensors agree (both accept with the same
// metadata, or both refuse); what loads saves and loads back with the same bytes. Not the model
// files' contents (names and shapes a model expects: core/model_io.h).
#include <cstring>
#include <string>

#include "core/safetensors.h"
#include "tests/fuzz/targets.h"

namespace infini::fuzz {

namespace safetensors_target {

bool same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const torch::Tensor ca = a.contiguous(), cb = b.contiguous();
  const size_t n = static_cast<size_t>(ca.numel()) * ca.element_size();
  return n == 0 || std::memcmp(ca.data_ptr(), cb.data_ptr(), n) == 0;
}

}  // namespace safetensors_target

Outcome fuzz_safetensors(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("safetensors/in.safetensors", data, size);
  return guarded([&](Outcome& o) {
    std::string meta_error;
    std::map<std::string, std::string> meta;
    try {
      meta = read_safetensors_metadata(path);
    } catch (const infini::Error& e) {
      meta_error = e.what();
    }
    SafeTensors st;
    try {
      st = load_safetensors(path);
    } catch (const infini::Error& e) {
      if (meta_error.empty()) o.finding = std::string("the header reads but the file does not load: ") + e.what();
      throw;
    }
    if (!meta_error.empty()) {
      o.finding = "the file loads but its header alone is refused: " + meta_error;
      return;
    }
    o.accepted = true;
    if (meta != st.metadata) {
      o.finding = "read_safetensors_metadata and load_safetensors give different metadata";
      return;
    }
    const std::string again = scratch_dir() + "/safetensors/again.safetensors";
    save_safetensors(again, st.tensors, st.metadata);
    const SafeTensors back = load_safetensors(again);
    if (back.metadata != st.metadata || back.tensors.size() != st.tensors.size()) {
      o.finding = "a saved copy loads back with other metadata or tensors";
      return;
    }
    for (const auto& [name, t] : st.tensors) {
      auto it = back.tensors.find(name);
      if (it == back.tensors.end() || !safetensors_target::same_bytes(t, it->second)) {
        o.finding = "tensor '" + name + "' differs after save and load";
        return;
      }
    }
  });
}

}  // namespace infini::fuzz
