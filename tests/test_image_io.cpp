// Image I/O: header probing, colour conversion, 16-bit scaling, corrupt files named in errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <opencv2/imgcodecs.hpp>

#include "fixtures.h"
#include "lriad/data/image_io.h"
#include "lriad/io/error.h"

using namespace lriad;
using lriad::test::TempDir;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lriad::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(ImageIo, ProbesPngAndJpegHeaders) {
  TempDir dir;
  test::write_png(dir / "a.png", 40, 30, 1, 7);
  test::write_png(dir / "b.png", 20, 10, 3, 7, 16);
  test::write_jpeg(dir / "c.jpg", 33, 17);
  auto a = data::read_image_info(dir / "a.png");
  EXPECT_EQ(a.width, 40);
  EXPECT_EQ(a.height, 30);
  EXPECT_EQ(a.channels, 1);
  auto b = data::read_image_info(dir / "b.png");
  EXPECT_EQ(b.bit_depth, 16);
  EXPECT_EQ(b.channels, 3);
  auto c = data::read_image_info(dir / "c.jpg");
  EXPECT_EQ(c.format, "jpeg");
  EXPECT_EQ(c.width, 33);
  EXPECT_EQ(c.height, 17);
}

TEST(ImageIo, GreyBecomesThreeChannelsAndSixteenBitIsScaled) {
  TempDir dir;
  test::write_png(dir / "g.png", 8, 8, 1, 51);         // 51/255 = 0.2
  test::write_png(dir / "h.png", 8, 8, 1, 13107, 16);  // 13107/65535 = 0.2
  for (const char* name : {"g.png", "h.png"}) {
    cv::Mat m = data::read_image(dir / name);
    EXPECT_EQ(m.type(), CV_32FC3) << name;
    cv::Vec3f px = m.at<cv::Vec3f>(3, 3);
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(px[c], 0.2f, 1e-6) << name;
  }
}

TEST(ImageIo, ColourIsRgbOrder) {
  TempDir dir;
  cv::Mat bgr(4, 4, CV_8UC3, cv::Scalar(255, 0, 0));  // pure blue in OpenCV's BGR
  cv::imwrite(dir / "blue.png", bgr);
  cv::Vec3f px = data::read_image(dir / "blue.png").at<cv::Vec3f>(0, 0);
  EXPECT_FLOAT_EQ(px[0], 0.f);
  EXPECT_FLOAT_EQ(px[2], 1.f);
}

TEST(ImageIo, CorruptFilesAreNamed) {
  TempDir dir;
  test::write_text(dir / "zero.png", "");
  test::write_text(dir / "text.png", "this is not an image at all");
  test::write_png(dir / "ok.png", 64, 64, 3, 9);
  std::string bytes = test::read_text(dir / "ok.png");
  test::write_text(dir / "trunc.png", bytes.substr(0, bytes.size() / 2));
  test::write_jpeg(dir / "ok.jpg", 64, 64);
  bytes = test::read_text(dir / "ok.jpg");
  test::write_text(dir / "trunc.jpg", bytes.substr(0, bytes.size() - 40));
  for (const char* name : {"zero.png", "text.png", "trunc.png", "trunc.jpg"}) {
    const std::string msg = error_of([&] { data::read_image(dir / name); });
    EXPECT_NE(msg.find(dir / name), std::string::npos) << name << ": " << msg;
  }
  EXPECT_NE(error_of([&] { data::read_image(dir / "missing.png"); }).find("not found"), std::string::npos);
  EXPECT_NE(error_of([&] { data::read_image(dir.path()); }).find("not found"), std::string::npos);
}

TEST(ImageIo, MaskIsBinaryAndResizeHitsTarget) {
  TempDir dir;
  test::write_mask(dir / "m.png", 16, 16);
  cv::Mat m = data::read_mask(dir / "m.png");
  EXPECT_EQ(m.type(), CV_8UC1);
  EXPECT_EQ(cv::countNonZero(m), 8 * 8);  // the centred w/2 x h/2 square
  double maxv;
  cv::minMaxLoc(m, nullptr, &maxv);
  EXPECT_EQ(maxv, 1.0);
  cv::Mat r = data::resize_square(data::read_image(dir / "m.png"), 5);
  EXPECT_EQ(r.rows, 5);
  EXPECT_EQ(r.cols, 5);
}
