// safetensors files: a reader and writer of our own (8-byte LE header length, JSON header, raw data).
// Not a model format: which tensors a model needs and how configs are stored is core/model_io.h.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <torch/types.h>

namespace infini {

// The whole content of one file: tensors by name (CPU, contiguous) and the "__metadata__" strings.
struct SafeTensors {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Told how far a long read or write is, as it goes: bytes done of all (a progress line's numbers).
using ByteProgress = std::function<void(uint64_t done, uint64_t total)>;

// Writes `tensors` (any device; copied to CPU) and `metadata` to `path`. Supported dtypes:
// F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL. Data is laid out in name order without gaps.
// Throws infini::Error naming the path on an unsupported dtype or a write failure.
void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {}, const ByteProgress& progress = {});

// Reads and validates a file; safe on hostile input: every header field is checked (dtype, shape,
// offsets inside the file, contiguous and non-overlapping, byte span == numel * dtype size)
// before any data is read. Throws infini::Error with one line naming the path on any defect.
// `progress` hears of every tensor read (bytes of the file so far, the file's size).
SafeTensors load_safetensors(const std::string& path, const ByteProgress& progress = {});

// The "__metadata__" strings only; the whole header is validated as in load_safetensors, no data is read.
std::map<std::string, std::string> read_safetensors_metadata(const std::string& path);

// "F32" for torch::kFloat etc.; throws infini::Error for dtypes safetensors cannot hold here.
std::string safetensors_dtype_name(torch::ScalarType t);

}  // namespace infini
