// Progress bar / periodic progress lines on stderr.
#include "lriad/train/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace lriad::train {

std::string format_duration(double s) {
  char buf[32];
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = long(std::lround(s));
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

Progress::Progress(std::string label, int total, int every)
    : label_(std::move(label)),
      total_(total),
      every_(every < 1 ? 1 : every),
      tty_(isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int done, const std::vector<std::pair<std::string, double>>& metrics) {
  if (start_done_ < 0) start_done_ = done - 1;  // a resumed run starts counting where it is
  if (!tty_ && done % every_ != 0 && done != total_) return;
  const double secs = elapsed_seconds();
  const double rate = (done - start_done_) / std::max(secs, 1e-9);
  const double eta = (total_ - done) / std::max(rate, 1e-9);
  std::string line;
  char buf[96];
  const int width = 20;
  const int filled = total_ > 0 ? int(double(width) * done / total_) : width;
  line = label_ + " [" + std::string(size_t(filled), '#') + std::string(size_t(width - filled), '.') + "] ";
  std::snprintf(buf, sizeof buf, "%d/%d", done, total_);
  line += buf;
  for (const auto& [name, value] : metrics) {
    std::snprintf(buf, sizeof buf, " %s %.4g", name.c_str(), value);
    line += buf;
  }
  std::snprintf(buf, sizeof buf, " | %.2f it/s ETA %s", rate, format_duration(eta).c_str());
  line += buf;
  if (tty_)
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (tty_) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace lriad::train
