// The progress line of long commands (see progress.h).
#include "train/run/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace infini {
namespace {

double progress_interval_from_env() {
  const char* e = std::getenv("INFINI_PROGRESS_SECONDS");
  if (!e || !*e) return 30.0;
  char* end = nullptr;
  const double v = std::strtod(e, &end);
  return end && *end == '\0' && v >= 0 ? v : 30.0;
}

// 1234567 -> "1.23M": amounts on the line.
std::string progress_amount(double v) {
  const double a = std::fabs(v);
  if (a >= 1e9) return fmt::format("{:.2f}G", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
  if (a == std::floor(a)) return fmt::format("{:.0f}", v);
  return fmt::format("{:.1f}", v);
}

}  // namespace

std::string progress_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long long t = static_cast<long long>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

Progress::Progress(std::string label, double total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(::isatty(2) == 1),
      interval_s_(tty_ ? 0.1 : progress_interval_from_env()), start_(Clock::now()), last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::update(double done) {
  std::lock_guard<std::mutex> g(mu_);
  done_ = done;
  maybe_draw(false);
}

void Progress::add(double n) {
  std::lock_guard<std::mutex> g(mu_);
  done_ += n;
  maybe_draw(false);
}

void Progress::set_total(double total) {
  std::lock_guard<std::mutex> g(mu_);
  total_ = total;
}

void Progress::note(const std::string& text) {
  std::lock_guard<std::mutex> g(mu_);
  note_ = text;
  maybe_draw(tty_);
}

void Progress::clear() {
  std::lock_guard<std::mutex> g(mu_);
  if (tty_ && drawn_) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
  }
}

void Progress::finish() {
  std::lock_guard<std::mutex> g(mu_);
  if (finished_) return;
  finished_ = true;
  if (tty_ && drawn_) std::fputs("\r\033[K", stderr);
  else if (!tty_ && printed_plain_ && done_ != printed_done_) std::fprintf(stderr, "%s\n", line_locked().c_str());
  std::fflush(stderr);
}

std::string Progress::line() const {
  std::lock_guard<std::mutex> g(mu_);
  return line_locked();
}

std::string Progress::line_locked() const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  if (unit_.empty()) return label_ + ": elapsed " + progress_duration(elapsed) + (note_.empty() ? "" : ", " + note_);
  std::string s = label_ + ": " + progress_amount(done_);
  if (total_ > 0) s += fmt::format("/{} {} ({:.0f}%)", progress_amount(total_), unit_, 100.0 * done_ / total_);
  else s += " " + unit_;
  s += fmt::format(", {} {}/s, elapsed {}", progress_amount(rate), unit_, progress_duration(elapsed));
  if (total_ > 0) s += ", ETA " + (rate > 0 ? progress_duration((total_ - done_) / rate) : std::string("?"));
  if (!note_.empty()) s += ", " + note_;
  return s;
}

// Called with mu_ held.
void Progress::maybe_draw(bool force) {
  if (finished_) return;
  const auto now = Clock::now();
  // A terminal gets the line at once (and again at once after clear()); then at the interval.
  if (!force && !(tty_ && !drawn_) && std::chrono::duration<double>(now - last_draw_).count() < interval_s_) return;
  last_draw_ = now;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", line_locked().c_str());
    drawn_ = true;
  } else {
    std::fprintf(stderr, "%s\n", line_locked().c_str());
    printed_plain_ = true;
    printed_done_ = done_;
  }
  std::fflush(stderr);
}

std::function<void(uint64_t, uint64_t)> progress_in_mb(Progress& p) {
  return [&p](uint64_t done, uint64_t total) {
    p.set_total(static_cast<double>(total) / 1e6);
    p.update(static_cast<double>(done) / 1e6);
  };
}

ProgressTicker::ProgressTicker(Progress& p) : p_(p) {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lk(mu_);
    while (!cv_.wait_for(lk, std::chrono::milliseconds(200), [this] { return stop_; })) p_.add(0);
  });
}

ProgressTicker::~ProgressTicker() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

}  // namespace infini
