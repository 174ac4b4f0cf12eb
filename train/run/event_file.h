// TensorBoard event files, written by hand: TFRecord framing (length, masked CRC32C of the length,
// the record, masked CRC32C of the record) around protobuf-encoded tensorboard.Event messages:
// the file version, scalar summaries, a text summary and SessionLog START. Each record goes to the
// file with one append-only write(2) as soon as it is made, so a killed process leaves whole records
// and at most one torn last one, which TensorBoard's readers skip. Not a reader, and not the mapping
// of metrics records to tags (train/run/tensorboard_log.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace infini {

// CRC-32C (Castagnoli) of the bytes, and TFRecord's masked form of it.
uint32_t crc32c(const void* data, size_t n);
uint32_t masked_crc32c(const void* data, size_t n);
// One TFRecord: the framing around `data`.
std::string tfrecord_frame(const std::string& data);

class EventFileWriter {
 public:
  // Creates DIR/events.out.tfevents.<unix seconds>.<host>.<pid>, its time chosen later than that of
  // every event file already in DIR (readers take a directory's files in name order), and writes
  // the file_version record "brain.Event:2". Throws Error (with the system's reason) when it cannot.
  explicit EventFileWriter(const std::string& dir);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // One event holding a scalar summary per (tag, value).
  void add_scalars(int64_t step, double wall_time, const std::vector<std::pair<std::string, float>>& values);
  // A text summary (TensorBoard's text plugin; shown as Markdown).
  void add_text(int64_t step, double wall_time, const std::string& tag, const std::string& text);
  // SessionLog START at `step`: readers drop what earlier records hold at steps >= `step`.
  void add_session_start(int64_t step, double wall_time);
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event);
  std::string path_;
  int fd_ = -1;
};

// Seconds since the Unix epoch, as event wall times are.
double unix_wall_time();

}  // namespace infini
