// safetensors reading and writing with every header field validated before data is touched.
// Not a model loader: names and shapes a model expects are checked in core/model_io.cpp.
#include "core/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors I/O assumes a little-endian host"
#endif

namespace infini {
namespace {

using json = nlohmann::json;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  uint64_t size;
};

const DtypeInfo kDtypes[] = {
    {"F64", torch::kDouble, 8}, {"F32", torch::kFloat, 4},  {"F16", torch::kHalf, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kLong, 8}, {"I32", torch::kInt, 4},
    {"I16", torch::kShort, 2},  {"I8", torch::kChar, 1},    {"U8", torch::kByte, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::string dtype_list() {
  std::string s;
  for (const auto& d : kDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

// nlohmann's parser itself is iterative, but a hostile header of a million '[' still costs a deep
// value tree; a safetensors header never nests deeper than 3, so refuse anything beyond 16 up front.
bool nesting_within(const std::string& text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// A JSON value that is an integer >= 0 (not a float, not a bool), as uint64.
bool as_unsigned(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& path, const std::string& name, const json& v, uint64_t data_size) {
  auto fail = [&](const std::string& what) {
    return Error(fmt::format("{}: tensor '{}': {}", path, name, what));
  };
  if (!v.is_object()) throw fail(fmt::format("expected an object, found {}", v.type_name()));
  Entry e;
  e.name = name;

  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) throw fail("missing string field \"dtype\"");
  e.dtype = find_dtype(dt->get<std::string>());
  if (!e.dtype)
    throw fail(fmt::format("unknown dtype \"{}\" (expected one of {})", dt->get<std::string>(), dtype_list()));

  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array())
    throw fail("\"shape\" must be a list of non-negative integers");
  if (sh->size() > 64) throw fail(fmt::format("shape has {} dimensions, at most 64 allowed", sh->size()));
  // numel and byte size with overflow checks: a hostile shape must not wrap around to a small span.
  uint64_t numel = 1;
  bool overflow = false;
  for (const auto& d : *sh) {
    uint64_t n;
    if (!as_unsigned(d, &n) || n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw fail(fmt::format("\"shape\" must be a list of non-negative integers, found {}", sh->dump()));
    e.shape.push_back(static_cast<int64_t>(n));
    if (__builtin_mul_overflow(numel, n, &numel)) overflow = true;
  }
  uint64_t nbytes = 0;
  if (overflow || __builtin_mul_overflow(numel, e.dtype->size, &nbytes))
    throw fail(fmt::format("shape {} is too large", sh->dump()));

  auto off = v.find("data_offsets");
  uint64_t b = 0, en = 0;
  if (off == v.end() || !off->is_array() || off->size() != 2 || !as_unsigned((*off)[0], &b) ||
      !as_unsigned((*off)[1], &en))
    throw fail("\"data_offsets\" must be a list of two non-negative integers [begin, end]");
  if (b > en) throw fail(fmt::format("data_offsets [{}, {}] has begin > end", b, en));
  if (en > data_size)
    throw fail(fmt::format("data_offsets [{}, {}] out of range: the data section has {} bytes", b, en,
                           data_size));
  if (en - b != nbytes)
    throw fail(fmt::format("data_offsets [{}, {}] span {} bytes, but shape {} x {} needs {} bytes", b, en,
                           en - b, shape_str(e.shape), e.dtype->name, nbytes));
  e.begin = b;
  e.end = en;
  return e;
}

// Opens `path` and validates its whole header; leaves `in` open and fills `result` (metadata only),
// `entries` (sorted by offset, covering the data section exactly) and `data_start`.
void read_header(const std::string& path, std::ifstream& in, SafeTensors& result, std::vector<Entry>& entries,
                 uint64_t& data_start_out) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(fmt::format("{}: no such file", path));
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(fmt::format("{}: cannot read its size", path));
  in.open(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open for reading", path));
  if (file_size < 8)
    throw Error(fmt::format("{}: file has {} bytes, expected at least 8 (the header length)", path, file_size));

  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(len[i]) << (8 * i);
  if (header_len > file_size - 8)
    throw Error(fmt::format("{}: header length {} is beyond the file ({} bytes after the length field)", path,
                            header_len, file_size - 8));
  // As the format's reference reader does: a header is JSON describing tensors, never this large.
  constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
  if (header_len > kMaxHeaderBytes)
    throw Error(fmt::format("{}: header length {} bytes is over the limit of {} bytes (not a safetensors file?)", path,
                            header_len, kMaxHeaderBytes));
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (!in) throw Error(fmt::format("{}: cannot read the {}-byte header", path, header_len));
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;

  if (!nesting_within(text, 16)) throw Error(fmt::format("{}: header is not valid JSON (nested too deeply)", path));
  json header = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) throw Error(fmt::format("{}: header is not valid JSON", path));
  if (!header.is_object())
    throw Error(fmt::format("{}: header must be a JSON object, found {}", path, header.type_name()));

  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (it->is_null()) continue;
      if (!it->is_object())
        throw Error(fmt::format("{}: __metadata__ must be an object of strings, found {}", path, it->type_name()));
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string())
          throw Error(fmt::format("{}: __metadata__ key '{}' must be a string, found {}", path, m.key(),
                                  m->type_name()));
        result.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, it.key(), *it, data_size));
  }

  // The data section must be covered exactly once: sorted spans touch end to start.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  const Entry* prev = nullptr;
  for (const auto& e : entries) {
    if (e.begin < pos)
      throw Error(fmt::format("{}: tensor '{}' data_offsets [{}, {}] overlap tensor '{}' [{}, {}]", path, e.name,
                              e.begin, e.end, prev->name, prev->begin, prev->end));
    if (e.begin > pos)
      throw Error(fmt::format("{}: gap of {} unused bytes before tensor '{}' (data_offsets [{}, {}])", path,
                              e.begin - pos, e.name, e.begin, e.end));
    pos = e.end;
    prev = &e;
  }
  if (pos != data_size)
    throw Error(fmt::format("{}: tensors cover {} bytes of the {}-byte data section (trailing bytes)", path, pos,
                            data_size));
  data_start_out = data_start;
}

}  // namespace

std::string safetensors_dtype_name(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  throw Error(fmt::format("safetensors: unsupported tensor dtype {}", c10::toString(t)));
}

void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata, const ByteProgress& progress) {
  json header = json::object();
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t0] : tensors) {
    if (name == "__metadata__") throw Error(fmt::format("{}: '__metadata__' cannot name a tensor", path));
    if (!t0.defined()) throw Error(fmt::format("{}: tensor '{}' is undefined", path, name));
    std::string dtype;
    try {
      dtype = safetensors_dtype_name(t0.scalar_type());
    } catch (const Error&) {
      throw Error(fmt::format("{}: tensor '{}' has dtype {}, which safetensors here cannot store", path, name,
                              c10::toString(t0.scalar_type())));
    }
    torch::Tensor t = t0.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(t);
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned (as other writers do).
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(fmt::format("{}: cannot open for writing", path));
  uint64_t n = text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  const uint64_t total = 8 + text.size() + offset;
  uint64_t done = 8 + text.size();
  for (const auto& t : data) {
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
    done += static_cast<uint64_t>(t.numel()) * t.element_size();
    if (progress) progress(done, total);
  }
  out.flush();
  if (!out) throw Error(fmt::format("{}: write failed (disk full?)", path));
}

std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  std::ifstream in;
  SafeTensors result;
  std::vector<Entry> entries;
  uint64_t data_start = 0;
  read_header(path, in, result, entries, data_start);
  return result.metadata;
}

SafeTensors load_safetensors(const std::string& path, const ByteProgress& progress) {
  std::ifstream in;
  SafeTensors result;
  std::vector<Entry> entries;
  uint64_t data_start = 0;
  read_header(path, in, result, entries, data_start);

  // Everything checked: now read, in file order.
  for (const auto& e : entries) {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    const uint64_t n = e.end - e.begin;
    if (n > 0) {
      in.seekg(static_cast<std::streamoff>(data_start + e.begin));
      in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(n));
      if (!in) throw Error(fmt::format("{}: cannot read tensor '{}' (file truncated while reading?)", path, e.name));
      if (e.dtype->type == torch::kBool) {
        const unsigned char* p = static_cast<const unsigned char*>(t.data_ptr());
        for (uint64_t i = 0; i < n; ++i)
          if (p[i] > 1)
            throw Error(fmt::format("{}: tensor '{}' (BOOL) holds byte {} at element {}, expected 0 or 1", path,
                                    e.name, static_cast<int>(p[i]), i));
      }
    }
    result.tensors.emplace(e.name, std::move(t));
    if (progress) progress(data_start + e.end, data_start + entries.back().end);  // the data ends the file
  }
  return result;
}

}  // namespace infini
