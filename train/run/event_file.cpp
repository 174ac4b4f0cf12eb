// TensorBoard event files (see event_file.h): CRC32C, TFRecord framing, the few protobuf messages
// used (tensorboard/compat/proto: event, summary, tensor), and the append-only file.
#include "train/run/event_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.h"

namespace fs = std::filesystem;

namespace infini {
namespace {

// Protobuf wire format: varints, fixed-width numbers and length-delimited fields.
enum class Wire : uint32_t { varint = 0, fixed64 = 1, bytes = 2, fixed32 = 5 };

void pb_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void pb_key(std::string& out, uint32_t field, Wire w) { pb_varint(out, (field << 3) | static_cast<uint32_t>(w)); }
template <class T> void pb_fixed(std::string& out, uint32_t field, T v) {
  pb_key(out, field, sizeof(T) == 8 ? Wire::fixed64 : Wire::fixed32);
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts (x86-64, aarch64)
  out.append(b, sizeof(T));
}
void pb_int(std::string& out, uint32_t field, int64_t v) {
  pb_key(out, field, Wire::varint);
  pb_varint(out, static_cast<uint64_t>(v));
}
void pb_bytes(std::string& out, uint32_t field, const std::string& v) {
  pb_key(out, field, Wire::bytes);
  pb_varint(out, v.size());
  out += v;
}

// tensorboard.Event: wall_time = 1, step = 2, file_version = 3, summary = 5, session_log = 7.
std::string event_head(int64_t step, double wall_time) {
  std::string e;
  pb_fixed<double>(e, 1, wall_time);
  if (step != 0) pb_int(e, 2, step);
  return e;
}

// Summary.Value: tag = 1, simple_value = 2, tensor = 8, metadata = 9.
std::string scalar_value(const std::string& tag, float v) {
  std::string s;
  pb_bytes(s, 1, tag);
  pb_fixed<float>(s, 2, v);
  return s;
}

// A rank-0 DT_STRING TensorProto (dtype = 1, tensor_shape = 2, string_val = 8) under the text plugin
// (SummaryMetadata.plugin_data = 1 {plugin_name = 1}; data_class = 4, DATA_CLASS_TENSOR = 2).
std::string text_value(const std::string& tag, const std::string& text) {
  std::string plugin, metadata, tensor, s;
  pb_bytes(plugin, 1, "text");
  pb_bytes(metadata, 1, plugin);
  pb_int(metadata, 4, 2);
  pb_int(tensor, 1, 7);  // DT_STRING
  pb_bytes(tensor, 2, "");
  pb_bytes(tensor, 8, text);
  pb_bytes(s, 1, tag);
  pb_bytes(s, 8, tensor);
  pb_bytes(s, 9, metadata);
  return s;
}

const std::array<uint32_t, 256>& crc32c_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// The unix time in an event file's name (events.out.tfevents.<time>.<...>), or -1.
int64_t event_file_time(const std::string& name) {
  const std::string prefix = "events.out.tfevents.";
  if (name.rfind(prefix, 0) != 0) return -1;
  try {
    return std::stoll(name.substr(prefix.size()));
  } catch (const std::exception&) {
    return -1;
  }
}

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  std::string h = buf;
  for (char& c : h)
    if (c == '/') c = '_';
  return h;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto& t = crc32c_table();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tfrecord_frame(const std::string& data) {
  const uint64_t len = data.size();
  char head[12];
  std::memcpy(head, &len, 8);
  const uint32_t len_crc = masked_crc32c(head, 8);
  std::memcpy(head + 8, &len_crc, 4);
  const uint32_t data_crc = masked_crc32c(data.data(), data.size());
  std::string out(head, 12);
  out += data;
  out.append(reinterpret_cast<const char*>(&data_crc), 4);
  return out;
}

double unix_wall_time() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

EventFileWriter::EventFileWriter(const std::string& dir) {
  int64_t t = static_cast<int64_t>(std::time(nullptr));
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) t = std::max(t, event_file_time(e.path().filename()) + 1);
  path_ = (fs::path(dir) / fmt::format("events.out.tfevents.{}.{}.{}", t, host_name(), ::getpid())).string();
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(fmt::format("{}: cannot create the TensorBoard event file: {}", path_, std::strerror(errno)));
  std::string e = event_head(0, unix_wall_time());
  pb_bytes(e, 3, "brain.Event:2");
  write_event(e);
}

EventFileWriter::~EventFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFileWriter::add_scalars(int64_t step, double wall_time,
                                  const std::vector<std::pair<std::string, float>>& values) {
  std::string summary;
  for (const auto& [tag, v] : values) pb_bytes(summary, 1, scalar_value(tag, v));
  std::string e = event_head(step, wall_time);
  pb_bytes(e, 5, summary);
  write_event(e);
}

void EventFileWriter::add_text(int64_t step, double wall_time, const std::string& tag, const std::string& text) {
  std::string summary;
  pb_bytes(summary, 1, text_value(tag, text));
  std::string e = event_head(step, wall_time);
  pb_bytes(e, 5, summary);
  write_event(e);
}

void EventFileWriter::add_session_start(int64_t step, double wall_time) {
  std::string log;
  pb_int(log, 1, 1);  // SessionLog.status = START
  std::string e = event_head(step, wall_time);
  pb_bytes(e, 7, log);
  write_event(e);
}

// One write(2) per record on an O_APPEND descriptor: nothing is buffered in the process.
void EventFileWriter::write_event(const std::string& event) {
  const std::string rec = tfrecord_frame(event);
  size_t done = 0;
  while (done < rec.size()) {
    const ssize_t n = ::write(fd_, rec.data() + done, rec.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(fmt::format("{}: cannot write: {}", path_, std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
}

}  // namespace infini
