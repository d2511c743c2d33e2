// Image I/O: PNG/JPEG header probing (fast dataset descriptions), decoding to RGB float, masks.
#include "lriad/data/image_io.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "lriad/io/error.h"

namespace fs = std::filesystem;

namespace lriad::data {
namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

[[noreturn]] void corrupt(const std::string& path, const std::string& why) {
  throw Error("corrupt or unreadable image " + path + ": " + why,
              "re-download or remove the file (a partial download is the usual cause)");
}

uint32_t be32(const unsigned char* p) { return (uint32_t(p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; }
uint16_t be16(const unsigned char* p) { return uint16_t((p[0] << 8) | p[1]); }

// PNG: 8-byte signature, then the IHDR chunk; a complete file ends with the IEND chunk.
ImageInfo probe_png(const std::string& path, const std::string& bytes, const std::string& tail) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 26 || std::string(bytes.data() + 12, 4) != "IHDR") corrupt(path, "PNG header is incomplete");
  if (tail.size() < 12 || tail.compare(tail.size() - 8, 4, "IEND") != 0)
    corrupt(path, "PNG is truncated (no IEND chunk)");
  ImageInfo info;
  info.format = "png";
  info.width = int(be32(p + 16));
  info.height = int(be32(p + 20));
  info.bit_depth = p[24] == 16 ? 16 : 8;
  switch (p[25]) {
    case 0:
      info.channels = 1;
      break;
    case 4:
      info.channels = 2;
      break;
    case 6:
      info.channels = 4;
      break;
    default:
      info.channels = 3;
      break;  // 2 = RGB, 3 = palette
  }
  if (info.width <= 0 || info.height <= 0) corrupt(path, "PNG header has a zero size");
  return info;
}

// JPEG: walk the marker segments up to the first start-of-frame (SOFn) segment.
ImageInfo probe_jpeg(const std::string& path, const std::string& bytes, const std::string& tail) {
  size_t end = tail.find_last_not_of('\0');
  if (end == std::string::npos || end < 1 || (unsigned char)tail[end - 1] != 0xFF || (unsigned char)tail[end] != 0xD9)
    corrupt(path, "JPEG is truncated (no end-of-image marker)");
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 2;
  while (i + 3 < bytes.size()) {
    if (p[i] != 0xFF) corrupt(path, "JPEG marker structure is broken");
    unsigned char m = p[i + 1];
    if (m == 0xFF) {
      ++i;
      continue;
    }
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
      i += 2;
      continue;
    }
    uint16_t len = be16(p + i + 2);
    bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) {
      if (i + 9 >= bytes.size()) break;
      ImageInfo info;
      info.format = "jpeg";
      info.bit_depth = p[i + 4] > 8 ? 16 : 8;
      info.height = be16(p + i + 5);
      info.width = be16(p + i + 7);
      info.channels = p[i + 9];
      if (info.width <= 0 || info.height <= 0) corrupt(path, "JPEG frame has a zero size");
      return info;
    }
    i += 2 + len;
  }
  corrupt(path, "no JPEG frame header in the first " + std::to_string(bytes.size()) + " bytes");
}

}  // namespace

bool has_image_extension(const std::string& path) {
  static const std::array<const char*, 8> exts = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm"};
  const std::string ext = lower_extension(path);
  return std::any_of(exts.begin(), exts.end(), [&](const char* e) { return ext == e; });
}

ImageInfo read_image_info(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw Error("image not found: " + path, "check the path; directories are not images");
  const auto size = fs::file_size(path, ec);
  if (ec || size == 0) corrupt(path, "the file is empty");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open image " + path, "check file permissions");
  std::string head(size_t(std::min<uintmax_t>(size, 1 << 16)), '\0');
  in.read(head.data(), std::streamsize(head.size()));
  std::string tail(size_t(std::min<uintmax_t>(size, 64)), '\0');
  in.seekg(std::streamoff(size - tail.size()));
  in.read(tail.data(), std::streamsize(tail.size()));
  if (head.size() >= 8 && head.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) return probe_png(path, head, tail);
  if (head.size() >= 3 && (unsigned char)head[0] == 0xFF && (unsigned char)head[1] == 0xD8)
    return probe_jpeg(path, head, tail);
  // Other formats: decode to learn the size.
  cv::Mat img = cv::imread(path, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH);
  if (img.empty()) corrupt(path, "OpenCV cannot decode it (not an image, or an unsupported format)");
  ImageInfo info;
  info.width = img.cols;
  info.height = img.rows;
  info.channels = img.channels();
  info.bit_depth = img.depth() == CV_16U ? 16 : 8;
  info.format = lower_extension(path).substr(1);
  return info;
}

cv::Mat read_image(const std::string& path) {
  read_image_info(path);  // names missing, empty and truncated files before OpenCV guesses
  cv::Mat raw = cv::imread(path, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH);
  if (raw.empty()) corrupt(path, "OpenCV cannot decode it");
  double scale = 1.0;
  if (raw.depth() == CV_8U)
    scale = 1.0 / 255.0;
  else if (raw.depth() == CV_16U)
    scale = 1.0 / 65535.0;
  else if (raw.depth() != CV_32F)
    corrupt(path, "unsupported pixel depth");
  cv::Mat rgb;
  switch (raw.channels()) {
    case 1:
      cv::cvtColor(raw, rgb, cv::COLOR_GRAY2RGB);
      break;
    case 3:
      cv::cvtColor(raw, rgb, cv::COLOR_BGR2RGB);
      break;
    case 4:
      cv::cvtColor(raw, rgb, cv::COLOR_BGRA2RGB);
      break;
    default:
      corrupt(path, "unsupported channel count " + std::to_string(raw.channels()));
  }
  cv::Mat out;
  rgb.convertTo(out, CV_32FC3, scale);
  return out;
}

cv::Mat read_image_or_skip(const std::string& path, bool skip, const std::string& hint) {
  try {
    return read_image(path);
  } catch (const Error& e) {
    if (!skip) throw Error(e.what(), hint);
    spdlog::warn("skipping unreadable image: {}", e.what());
    return {};
  }
}

cv::Mat read_mask(const std::string& path) {
  read_image_info(path);
  cv::Mat raw = cv::imread(path, cv::IMREAD_GRAYSCALE | cv::IMREAD_ANYDEPTH);
  if (raw.empty()) corrupt(path, "OpenCV cannot decode the mask");
  cv::Mat out;
  cv::compare(raw, 0, out, cv::CMP_GT);  // 255 where defective
  out /= 255;
  return out;
}

cv::Mat resize_square(const cv::Mat& image, int size) {
  if (image.rows == size && image.cols == size) return image.clone();
  cv::Mat out;
  const bool shrink = image.rows > size || image.cols > size;
  cv::resize(image, out, cv::Size(size, size), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

std::vector<std::string> list_images(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.empty() && name[0] != '.' && !e.is_directory(ec) && has_image_extension(name))
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace lriad::data
