// Console progress for long loops: a redrawn bar on a terminal, periodic lines otherwise,
// with step, chosen metrics, it/s and ETA.
#pragma once
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace lriad::train {

class Progress {
 public:
  // `every`: on a non-terminal, print a line every `every` steps (and the last one).
  Progress(std::string label, int total, int every = 10);
  // Call after finishing step `done` (1-based count) with the metrics to show.
  void update(int done, const std::vector<std::pair<std::string, double>>& metrics = {});
  void finish();
  double elapsed_seconds() const;

 private:
  std::string label_;
  int total_, every_;
  bool tty_;
  int start_done_ = -1;
  std::chrono::steady_clock::time_point start_;
};

// "1m05s", "42s", "2h03m".
std::string format_duration(double seconds);

}  // namespace lriad::train
