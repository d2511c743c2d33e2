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
#include <sys/wait.h>
#include <unistd.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace fs = std::filesystem;

namespace lriad::test {

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  path_ = (fs::temp_directory_path() / ("lriad-test-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(counter++) + "-" + std::to_string(rd() % 100000)))
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
  box(-3, 30, 6, 0.25f);   // shaft
  box(-18, 7, 14, 0.2f);   // head
  if (spot >= 0) {
    const int sx = int(std::lround(cx + (spot - 3) * ux)), sy = int(std::lround(cy + (spot - 3) * uy));
    img(cv::Rect(sx - 1, sy - 1, 3, 3)).setTo(cv::Scalar(0.95, 0.95, 0.95));
  }
  cv::Mat noise(size, size, CV_32FC3);
  cv::RNG rng(seed);
  rng.fill(noise, cv::RNG::NORMAL, 0.0, 0.01);
  return img + noise;
}

}  // namespace lriad::test
