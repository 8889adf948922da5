// The Hugging Face image processors' preprocessing, so that pixel values match transformers':
// convert to RGB, resize with PIL's / torchvision's antialiased resampling (separable
// convolution, filter support scaled by the downscale factor, 8-bit fixed-point weights and
// rounding; see ResizeKernel), center-crop (CLIPImageProcessor), rescale (x * rescale_factor)
// and normalise ((x - mean) / std) in float32. The output is channels-first [3, H, W].
// Thread-safety: ImageProcessor is immutable after construction.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "image/image.h"

namespace loom::image {

// PIL's resampling filter ids (Image.Resampling), as preprocessor_config.json stores them.
enum class Resample : int {
  kNearest = 0,
  kLanczos = 1,
  kBilinear = 2,
  kBicubic = 3,
  kBox = 4,
  kHamming = 5
};

// Which implementation's 8-bit arithmetic to reproduce. Both are separable convolutions with
// the same filters and support (scaled by the downscale factor: antialiasing), horizontal pass
// first, each pass rounded to uint8; they differ only in the fixed-point weights:
//   kPil:         Pillow's Image.resize(reducing_gap=None): 22 fraction bits (the slow HF
//                 image processors, which resize through PIL).
//   kTorchvision: torchvision's resize(antialias=True) on uint8 tensors: int16 weights with the
//                 most fraction bits that keep the largest weight below 2^15 (the fast HF
//                 processors, transformers' default since v5).
enum class ResizeKernel { kPil, kTorchvision };

// Image.resize(size, resample) of an RGB image. kUnsupported for kNearest (sampled without
// convolution; no processor loom reads uses it).
Image resize(const Image& in, int64_t width, int64_t height, Resample filter,
             ResizeKernel kernel = ResizeKernel::kPil);

// The part of that resized image inside `window` (rows top.., columns left..), the same bytes as
// cropping the whole resize, at the cost of the window: a resize followed by a center crop
// (CLIP) computes only the pixels it keeps.
struct Window {
  int64_t top = 0, left = 0, height = 0, width = 0;
};
Image resize(const Image& in, int64_t width, int64_t height, Resample filter, ResizeKernel kernel,
             const Window& window);

struct ImageProcessor {
  // The largest size a preprocessor_config.json may ask for (any side), and the most pixels a
  // resize may produce: 4096 x 4096, above every vision processor loom reads (Qwen2.5-VL's
  // max_pixels is 12.8M). A tiny image resized to a large shortest edge costs time in
  // proportion to the pixels it produces (21 x 13 to 6934 x 11202: 30 s in the sanitizer
  // build, found by fuzz_image), so the bound is on what is produced, not what was decoded.
  static constexpr int64_t kMaxSide = 4096;
  static constexpr int64_t kMaxResizedPixels = kMaxSide * kMaxSide;
  bool do_convert_rgb = true, do_resize = true, do_center_crop = false, do_rescale = true,
       do_normalize = true;
  int64_t shortest_edge = 0;      // resize so the short side is this (CLIP), or
  int64_t height = 0, width = 0;  // to exactly this size (SigLIP)
  int64_t crop_height = 0, crop_width = 0;
  Resample resample = Resample::kBicubic;
  double rescale_factor = 1.0 / 255.0;
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f}, std{0.5f, 0.5f, 0.5f};
  // transformers >= 5 loads the fast (torchvision) processors by default; the reference
  // pixel_values in tests/data match it exactly and differ from PIL by one uint8 step at a
  // few pixels (SigLIP's 61 -> 32 rows).
  ResizeKernel kernel = ResizeKernel::kTorchvision;

  // Reads `dir`/preprocessor_config.json; kNotFound when absent, kCorruption/kUnsupported for
  // fields loom cannot follow (naming them).
  static ImageProcessor from_folder(const std::string& dir);
  // The same from the text of a preprocessor_config.json; `file` names it in errors.
  static ImageProcessor from_json(std::string_view text, const std::string& file);
  // The [3, H, W] float pixel values for `img`.
  std::vector<float> operator()(const Image& img) const;
  // The (height, width) operator() produces.
  std::pair<int64_t, int64_t> output_size() const;

 private:
  // The center crop of `img` (w x h), or, with `resized`, of its resize to w x h.
  Image center_crop(const Image& img, int64_t w, int64_t h, bool resized) const;
};

}  // namespace loom::image
