// Test fixtures (see fixtures.h).
#include "fixtures.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace fs = std::filesystem;

namespace lriad::test {

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  path_ = (fs::temp_directory_path() / ("lriad-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
                                        "-" + std::to_string(rd() % 100000)))
              .string();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_png(const std::string& path, int w, int h, int channels, int value, int depth) {
  fs::create_directories(fs::path(path).parent_path());
  const int type = CV_MAKETYPE(depth == 16 ? CV_16U : CV_8U, channels);
  cv::Mat img(h, w, type, cv::Scalar::all(value));
  if (!cv::imwrite(path, img)) throw std::runtime_error("fixture: cannot write " + path);
}

void write_jpeg(const std::string& path, int w, int h, int value) {
  fs::create_directories(fs::path(path).parent_path());
  cv::Mat img(h, w, CV_8UC3, cv::Scalar::all(value));
  if (!cv::imwrite(path, img)) throw std::runtime_error("fixture: cannot write " + path);
}

void write_mask(const std::string& path, int w, int h, bool empty) {
  fs::create_directories(fs::path(path).parent_path());
  cv::Mat m(h, w, CV_8UC1, cv::Scalar(0));
  if (!empty) cv::rectangle(m, cv::Rect(w / 4, h / 4, w / 2, h / 2), cv::Scalar(255), cv::FILLED);
  cv::imwrite(path, m);
}

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string shell_command(const std::string& binary, const std::vector<std::string>& args) {
  std::string c = binary;
  for (const auto& a : args) c += " '" + a + "'";
  return c;
}

void add_sets(std::vector<std::string>& args, const std::vector<std::string>& sets) {
  for (const auto& s : sets) {
    args.push_back("--set");
    args.push_back(s);
  }
}

pid_t spawn(const std::string& binary, const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int count_lines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string l; std::getline(in, l);) n += !l.empty() && l.back() == '}';
  return n;
}

bool wait_for_lines(pid_t pid, const std::string& path, int lines) {
  for (int i = 0; i < 6000; ++i) {
    if (count_lines(path) >= lines) return true;
    if (waitpid(pid, nullptr, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::vector<nlohmann::json> metrics_without_times(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_text(path));
  for (std::string l; std::getline(in, l);) {
    auto j = nlohmann::json::parse(l);
    for (auto it = j.begin(); it != j.end();) {
      if (it.key() == "step_time" || it.key().rfind("time/", 0) == 0)
        it = j.erase(it);
      else
        ++it;
    }
    out.push_back(j);
  }
  return out;
}

CommandResult run_command(const std::string& cmd, bool merge_stderr) {
  CommandResult r;
  const std::string full = cmd + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* pipe = ::popen(full.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

void make_mvtec_tree(const std::string& root, int size) {
  auto img = [&](const std::string& rel) { write_png(root + "/" + rel, size, size, 3, 100); };
  auto mask = [&](const std::string& rel) { write_mask(root + "/" + rel, size, size); };
  for (int i = 0; i < 4; ++i) img("alpha/train/good/00" + std::to_string(i) + ".png");
  for (int i = 0; i < 2; ++i) img("alpha/test/good/00" + std::to_string(i) + ".png");
  for (int i = 0; i < 2; ++i) {
    img("alpha/test/crack/00" + std::to_string(i) + ".png");
    mask("alpha/ground_truth/crack/00" + std::to_string(i) + "_mask.png");
  }
  img("alpha/test/hole/000.png");
  mask("alpha/ground_truth/hole/000_mask.png");
  for (int i = 0; i < 3; ++i) img("beta/train/good/00" + std::to_string(i) + ".png");
  img("beta/test/good/000.png");
  for (int i = 0; i < 2; ++i) {
    img("beta/test/scratch/00" + std::to_string(i) + ".png");
    mask("beta/ground_truth/scratch/00" + std::to_string(i) + "_mask.png");
  }
}

cv::Mat draw_part(int size, double cx, double cy, double degrees, uint64_t seed, int spot) {
  cv::Mat img(size, size, CV_32FC3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const float v = 0.75f - 0.15f * float(x) / float(size);
      img.at<cv::Vec3f>(y, x) = {v, v, v};
    }
  const double t = degrees * M_PI / 180.0, ux = std::cos(t), uy = -std::sin(t);  // image y points down
  auto box = [&](double along, double len, double width, float value) {
    const double mx = cx + along * ux, my = cy + along * uy;
    const cv::RotatedRect r(cv::Point2f(float(mx), float(my)), cv::Size2f(float(len), float(width)), float(-degrees));
    cv::Point2f p[4];
    r.points(p);
    std::vector<cv::Point> q;
    for (auto& v : p) q.emplace_back(int(std::lround(v.x * 16)), int(std::lround(v.y * 16)));
    cv::fillConvexPoly(img, q, cv::Scalar(value, value, value), cv::LINE_AA, 4);
  };
  box(-3, 30, 6, 0.25f);  // shaft
  box(-18, 7, 14, 0.2f);  // head
  if (spot >= 0) {
    const int sx = int(std::lround(cx + (spot - 3) * ux)), sy = int(std::lround(cy + (spot - 3) * uy));
    img(cv::Rect(sx - 1, sy - 1, 3, 3)).setTo(cv::Scalar(0.95, 0.95, 0.95));
  }
  cv::Mat noise(size, size, CV_32FC3);
  cv::RNG rng(seed);
  rng.fill(noise, cv::RNG::NORMAL, 0.0, 0.01);
  return img + noise;
}

namespace {

// A woven texture filling the frame: two crossing sinusoids with noise, slightly shifted per seed.
cv::Mat draw_texture(int size, uint64_t seed) {
  cv::Mat img(size, size, CV_32FC3);
  cv::RNG rng(seed);
  const double phase = rng.uniform(0.0, 6.28);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const float v = float(0.5 + 0.2 * std::sin(0.8 * x + phase) * std::sin(0.8 * y + phase));
      img.at<cv::Vec3f>(y, x) = {v * 0.9f, v * 0.7f, v * 0.5f};
    }
  cv::Mat noise(size, size, CV_32FC3);
  rng.fill(noise, cv::RNG::NORMAL, 0.0, 0.03);
  return img + noise;
}

// RGB [0,1] square -> a (3/2 h) x h 8-bit JPG (BGR on disk).
void write_photo(const std::string& path, const cv::Mat& rgb, int height) {
  fs::create_directories(fs::path(path).parent_path());
  cv::Mat wide, bgr, u8;
  cv::resize(rgb, wide, cv::Size(height * 3 / 2, height), 0, 0, cv::INTER_LINEAR);
  cv::cvtColor(wide, bgr, cv::COLOR_RGB2BGR);
  bgr.convertTo(u8, CV_8UC3, 255.0);
  cv::imwrite(path, u8, {cv::IMWRITE_JPEG_QUALITY, 92});
}

}  // namespace

void make_photo_tree(const std::string& root, const std::string& format, int normals, int height) {
  std::string csv = "object,split,label,image\n";
  for (const std::string cat : {"carpet", "screw"}) {
    auto draw = [&](int i, bool defect) {
      const uint64_t seed = uint64_t(i) * 7 + (cat == "screw" ? 1000 : 0);
      cv::Mat img =
          cat == "screw" ? draw_part(64, 26 + 2 * (i % 6), 28 + 2 * (i % 5), 25.0 * i, seed) : draw_texture(64, seed);
      if (defect) img(cv::Rect(28, 30, 8, 3)).setTo(cv::Scalar(0.05, 0.9, 0.1));  // a green gash
      return img;
    };
    auto put = [&](const std::string& split, const std::string& cls, int i, bool defect) {
      const std::string name = std::to_string(100 + i) + ".jpg";
      std::string rel;
      if (format == "mvtec")
        rel = cat + "/" + split + "/" + cls + "/" + name;
      else if (format == "visa")
        rel = cat + "/Data/Images/" + (defect ? "Anomaly/" : "Normal/") + split + name;
      else
        rel = cat + "/" + cls + "/" + split + name;
      write_photo(root + "/" + rel, draw(i, defect), height);
      csv += cat + "," + split + "," + (defect ? "anomaly" : "normal") + "," + rel + "\n";
    };
    for (int i = 0; i < normals; ++i) put("train", "good", i, false);
    for (int i = 0; i < 2; ++i) put("test", "good", normals + i, false);
    for (int i = 0; i < 2; ++i) put("test", "crack", normals + 2 + i, true);
  }
  if (format == "visa") write_text(root + "/split_csv/1cls.csv", csv);
}

}  // namespace lriad::test
