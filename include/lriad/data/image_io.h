// Image and mask I/O with OpenCV: header-only size probing, RGB float decoding, binary masks.
#pragma once
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace lriad::data {

struct ImageInfo {
  int width = 0;
  int height = 0;
  int channels = 0;    // 1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha
  int bit_depth = 8;   // 8 or 16
  std::string format;  // "png", "jpeg", or the extension for formats probed by decoding
};

// Reads only the file header (PNG, JPEG) so that large datasets can be described quickly;
// other formats are decoded. Throws lriad::Error naming the file if it is missing,
// empty, truncated or not an image.
ImageInfo read_image_info(const std::string& path);

// Decodes an image to CV_32FC3, RGB order, values in [0,1]. Greyscale becomes 3-channel,
// alpha is dropped, 16-bit images are scaled by 1/65535. Throws naming the file.
cv::Mat read_image(const std::string& path);

// read_image for a run that may skip bad files: an unreadable image throws with `hint` (how to
// skip it), or with `skip` logs a warning naming it and returns an empty matrix.
cv::Mat read_image_or_skip(const std::string& path, bool skip, const std::string& hint);

// Decodes a mask to CV_8UC1 with values {0,1} (any non-zero pixel is defective).
cv::Mat read_mask(const std::string& path);

// Area-resamples (downscale) or linearly resamples (upscale) to size x size.
cv::Mat resize_square(const cv::Mat& image, int size);

// True for the file extensions lriad treats as images (case-insensitive).
bool has_image_extension(const std::string& path);
// Sorted full paths of the image files (by extension) directly inside `dir`; hidden entries skipped.
std::vector<std::string> list_images(const std::string& dir);

}  // namespace lriad::data
