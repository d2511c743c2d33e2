// Colour novelty: how far each pixel's colour lies from every colour the normal images of a
// category show. A speck of blue or green on a cream pill, rust on grey metal or a hole showing
// the background is a colour no normal image has; the position-by-position comparisons miss such
// small specks among a part's own random marks (a pill's red specks), and a patch bank's distance
// mixes colour with texture. Normal images score ~0 here (no normal image of the demo's 960-image
// split reaches one bin).
//
// The palette is the set of RGB bins (kBins per channel, 1/32 of the range each) that some pixel of
// some normal image falls in; novelty is, per pixel, the city-block distance in bins from its
// colour's bin to the nearest palette bin, less one bin of tolerance (sensor noise and a shade of
// lighting), averaged over 3x3 pixels (one noisy pixel is not a defect). Images are CV_32FC3 RGB
// [0,1] (grey images have R = G = B); no torch here.
#pragma once
#include <vector>

#include <opencv2/core.hpp>

namespace lriad::reference {

class ColourPalette {
 public:
  static constexpr int kBins = 32;  // per channel
  static constexpr int kCells = kBins * kBins * kBins;
  ColourPalette() = default;

  // From the normal images (any sides); throws lriad::Error for an empty list or a non-RGB image.
  static ColourPalette build(const std::vector<cv::Mat>& normal_images);
  // From a saved table (kCells distances, see distances()); throws when its size is wrong.
  static ColourPalette from_distances(std::vector<float> distances);

  // (H,W) CV_32FC1 >= 0: per pixel, bins beyond the tolerance from the nearest normal colour,
  // 3x3-averaged. Empty palette (default-constructed): all zeros.
  cv::Mat novelty(const cv::Mat& image) const;
  bool empty() const { return distance_.empty(); }
  // Per bin (index (r*kBins + g)*kBins + b), the city-block distance in bins to the nearest palette bin.
  const std::vector<float>& distances() const { return distance_; }

 private:
  std::vector<float> distance_;
};

}  // namespace lriad::reference
