#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace loom {

namespace {

bool g_quiet_all = false;

std::string duration_text(double seconds) {
  if (seconds < 0 || seconds > 360000) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

}  // namespace

Progress::Progress(std::string label, int64_t total, Unit unit, bool quiet)
    : label_(std::move(label)),
      total_(total),
      unit_(unit),
      quiet_(quiet || g_quiet_all),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  if (!quiet_ && !tty_) {
    const int64_t t = total_.load();
    fmt::print(stderr, "{}: {}\n", label_,
               t > 0 ? (unit_ == Unit::kBytes ? bytes_text(static_cast<double>(t))
                                              : fmt::format("{} items", t))
                     : std::string("started"));
  }
}

Progress::~Progress() {
  finish();
}

void Progress::set_quiet_all(bool quiet) {
  g_quiet_all = quiet;
}

std::string Progress::bytes_text(double bytes) {
  static const char* const kUnits[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, kUnits[u]);
}

void Progress::set_total(int64_t total) {
  total_.store(total);
}

void Progress::add(int64_t n) {
  done_.fetch_add(n);
  if (quiet_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw(false);
    return;
  }
  const int64_t total = total_.load();
  if (total <= 0) return;
  const int quarter = static_cast<int>(4 * done_.load() / total);
  if (quarter > last_quarter_ && quarter < 4) {
    last_quarter_ = quarter;
    if (quarter > 0) draw(false);
  }
}

void Progress::draw(bool final) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t done = done_.load(), total = total_.load();
  auto amount = [&](int64_t v) {
    return unit_ == Unit::kBytes ? bytes_text(static_cast<double>(v)) : fmt::format("{}", v);
  };
  std::string line = label_ + ": " + amount(done);
  if (total > 0) {
    line += fmt::format(" / {} ({:.0f}%)", amount(total),
                        100.0 * static_cast<double>(done) / static_cast<double>(total));
  }
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  if (rate > 0) {
    line += unit_ == Unit::kBytes ? fmt::format(", {}/s", bytes_text(rate))
                                  : fmt::format(", {:.1f}/s", rate);
  }
  if (final) {
    line += ", " + duration_text(seconds);
  } else if (total > 0 && rate > 0 && done < total) {
    line += ", " + duration_text(static_cast<double>(total - done) / rate) + " left";
  }
  if (tty_) {
    fmt::print(stderr, "\r\x1b[2K{}{}", line, final ? "\n" : "");
  } else {
    fmt::print(stderr, "{}\n", line);
  }
  std::fflush(stderr);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (!quiet_) draw(true);
}

}  // namespace loom
