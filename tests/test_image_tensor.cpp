// Images as tensors: (3,H,W) layout, RGB order, resizing.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include "fixtures.h"
#include "lriad/data/image_tensor.h"

TEST(ImageTensor, ChwRgbInUnitRange) {
  lriad::test::TempDir dir;
  cv::Mat bgr(10, 20, CV_8UC3, cv::Scalar(0, 0, 255));  // red in BGR
  cv::imwrite(dir / "red.png", bgr);
  auto t = lriad::data::load_image_tensor(dir / "red.png", 16);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3, 16, 16}));
  EXPECT_NEAR(t[0].mean().item<float>(), 1.f, 1e-6);  // R
  EXPECT_NEAR(t[2].mean().item<float>(), 0.f, 1e-6);  // B
}
