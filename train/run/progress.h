// A progress line for long commands, on stderr (stdout, which tests and scripts parse, is never
// written): on a terminal one line redrawn in place with "\r", at most ten times a second; when
// stderr is not a terminal, a plain line every INFINI_PROGRESS_SECONDS seconds (default 30; 0 =
// every update), so short commands print nothing extra. Libraries below train/ (data/) report
// through callbacks and the command draws. The line shows what is done of the total
// in its unit, the percentage, the rate, the elapsed time and the ETA (when the total is known),
// and a note (the phase or the current case). update() is cheap (a clock read, and a return
// between redraws) and thread-safe. Not a logger, and nothing of the model.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace infini {

class Progress {
 public:
  // total <= 0: unknown (no percentage, no ETA). unit: "tokens", "MB", "cases", ...; "" = no amounts
  // (the elapsed time and the note only, for a phase that cannot count).
  Progress(std::string label, double total, std::string unit);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(double done);  // the amount done so far
  void add(double n);        // n more done
  void set_total(double total);
  void note(const std::string& text);  // shown after the numbers; redrawn at once on a terminal
  // Erases the terminal line before other output to stderr (the next update draws it again).
  void clear();
  // Erases the terminal line; after plain lines, one last plain line with the totals (unless the
  // last one already said them).
  void finish();

  // The line as drawn (for tests): "LABEL: DONE/TOTAL UNIT (P%), RATE UNIT/s, elapsed E, ETA T, NOTE".
  std::string line() const;

 private:
  using Clock = std::chrono::steady_clock;
  void maybe_draw(bool force);
  std::string line_locked() const;

  std::string label_, unit_, note_;
  double total_, done_ = 0, printed_done_ = -1;  // printed_done_: the amount of the last plain line
  bool tty_, finished_ = false, printed_plain_ = false, drawn_ = false;
  double interval_s_;
  Clock::time_point start_, last_draw_;
  mutable std::mutex mu_;
};

// Redraws a Progress every 200 ms from a thread while it lives: for a phase that makes no updates
// of its own (a library call), so the elapsed time still moves.
class ProgressTicker {
 public:
  explicit ProgressTicker(Progress& p);
  ~ProgressTicker();

 private:
  Progress& p_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// A callback for readers and writers that count bytes (core's ByteProgress): shows them on `p`
// as MB done of MB in all.
std::function<void(uint64_t done, uint64_t total)> progress_in_mb(Progress& p);

// "1h02m", "3m05s", "12s"; "?" for a negative or non-finite time.
std::string progress_duration(double seconds);

}  // namespace infini
