// libFuzzer target: the VisA split CSV, from the CSV parser through the row interpretation.
// The rows refer to a tiny dataset written once at start-up (one normal image, one anomalous
// image with its mask, one mask of the wrong size), so inputs can reach every check. Only
// lriad::Error may escape.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <string_view>
#include <unistd.h>

#include "lriad/data/dataset.h"
#include "lriad/io/csv.h"
#include "lriad/io/error.h"

namespace fs = std::filesystem;

namespace {

std::string g_root;

void remove_root() {
  std::error_code ec;
  fs::remove_all(g_root, ec);
}

void write_image(const std::string& rel, int side, int value) {
  const fs::path path = fs::path(g_root) / rel;
  fs::create_directories(path.parent_path());
  if (!cv::imwrite(path.string(), cv::Mat(side, side, CV_8UC1, cv::Scalar(value)))) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_root = (fs::temp_directory_path() / ("lriad-fuzz-visa-" + std::to_string(::getpid()))).string();
  // The paths the seed corpus uses, as in the published VisA layout.
  write_image("cap/Data/Images/Normal/000.JPG", 16, 128);
  write_image("cap/Data/Images/Anomaly/000.JPG", 16, 90);
  write_image("cap/Data/Masks/Anomaly/000.png", 16, 255);
  write_image("cap/Data/Masks/Anomaly/001.png", 8, 255);
  std::atexit(remove_root);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const lriad::io::CsvTable table = lriad::io::parse_csv(text, "fuzz/1cls.csv");
    for (const auto& row : table.rows)
      if (row.size() != table.header.size()) std::abort();  // documented invariant
    lriad::data::parse_visa_split(table, g_root, {});
  } catch (const lriad::Error&) {
  }
  return 0;
}
