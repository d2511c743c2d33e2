// Test fixtures: temporary directories and tiny generated images, masks and CSV files.
#pragma once
#include <string>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

namespace lriad::test {

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// Writes a w x h image (channels 1 or 3, depth 8 or 16) filled with `value`, creating parents.
void write_png(const std::string& path, int w, int h, int channels = 3, int value = 128, int depth = 8);
void write_jpeg(const std::string& path, int w, int h, int value = 128);
// Mask with a filled square of 255 in the middle (or all zero when `empty`).
void write_mask(const std::string& path, int w, int h, bool empty = false);
void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// Runs a shell command, returns its exit code and stdout (stderr appended when `merge`).
struct CommandResult {
  int code = -1;
  std::string out;
};
CommandResult run_command(const std::string& cmd, bool merge_stderr = false);

// `binary` and `args` as one shell command, each argument quoted; add_sets appends `--set s` for each s.
std::string shell_command(const std::string& binary, const std::vector<std::string>& args);
void add_sets(std::vector<std::string>& args, const std::vector<std::string>& sets);

// Child processes (a training run to interrupt): `binary args...` with stdout and stderr appended to
// `log`; returns the child's pid.
pid_t spawn(const std::string& binary, const std::vector<std::string>& args, const std::string& log);
// Exit status, or 128 + signal when killed.
int wait_exit(pid_t pid);
// Complete JSON lines (ending in '}') in `path`.
int count_lines(const std::string& path);
// Waits until `path` has at least `lines` complete JSON lines (or the child has gone).
bool wait_for_lines(pid_t pid, const std::string& path, int lines);
// metrics.jsonl without its wall-clock fields, which differ between any two runs.
std::vector<nlohmann::json> metrics_without_times(const std::string& path);

// A small MVTec-AD tree: categories "alpha" (2 defect types, masks) and "beta" (1 type).
// alpha: train/good 4, test/good 2, test/crack 2, test/hole 1; beta: 3 / 1 / scratch 2.
void make_mvtec_tree(const std::string& root, int size = 32);

// A screw-like part (shaft 30x6 px with a 7x14 head at one end, grey 0.25) centred at (cx, cy),
// turned by `degrees` (OpenCV's sense), on a 0.75 background with a left-to-right lighting gradient
// and pixel noise; CV_32FC3 RGB, size x size. `spot` >= 0 paints a 3x3 bright spot on the shaft,
// `spot` px along the axis from the shaft's centre.
cv::Mat draw_part(int size, double cx, double cy, double degrees, uint64_t seed, int spot = -1);

// Two categories of non-square (w = 3/2 h) JPG photographs in the `format` layout ("mvtec", "visa"
// or "folder"): "carpet", a woven texture that fills the frame, and "screw", draw_part at other
// places and angles on a plain background. `normals` normal images per category (mvtec/visa: all
// in train; folder: lriad's split takes its share), plus 2 normal and 2 "crack" test images.
// The folder layout puts the extra images in good/ and crack/.
void make_photo_tree(const std::string& root, const std::string& format, int normals = 10, int height = 64);

}  // namespace lriad::test
