// Conversion of decoded images to LibTorch tensors.
#include "lriad/data/image_tensor.h"

#include <torch/torch.h>

#include "lriad/data/image_io.h"
#include "lriad/io/error.h"

namespace lriad::data {

torch::Tensor image_to_tensor(const cv::Mat& rgb) {
  if (rgb.type() != CV_32FC3) throw Error("image_to_tensor expects a CV_32FC3 image");
  cv::Mat contiguous = rgb.isContinuous() ? rgb : rgb.clone();
  auto hwc = torch::from_blob(contiguous.data, {contiguous.rows, contiguous.cols, 3}, torch::kFloat32);  // (H,W,3)
  return hwc.permute({2, 0, 1}).contiguous();                                                            // (3,H,W)
}

torch::Tensor load_image_tensor(const std::string& path, int size) {
  return image_to_tensor(resize_square(read_image(path), size));
}

}  // namespace lriad::data
