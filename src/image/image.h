// Image decoding for the vision encoders: PNG (libpng's simplified API) and JPEG (libjpeg),
// converted to 8-bit RGB as PIL's Image.convert("RGB") does (grey replicated, alpha dropped,
// palettes expanded). Dimensions are checked against kMaxImagePixels from the header, before
// the pixel buffer is allocated, so a crafted header cannot make loom allocate gigabytes.
// Errors name the file: kCorruption for data that is not a (complete) PNG/JPEG, kOutOfRange for
// an image over the limit.
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace loom::image {

// PIL's Image.MAX_IMAGE_PIXELS (its decompression-bomb warning threshold): 89,478,485 pixels,
// 256 MiB of RGB.
inline constexpr int64_t kMaxImagePixels = 89478485;
inline constexpr int64_t kMaxImageSide = 65535;

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height x width x 3, row-major
  uint8_t at(int64_t y, int64_t x, int c) const { return rgb[(y * width + x) * 3 + c]; }
};

// `name` is what errors call the data (the file path).
Image decode_image(std::span<const uint8_t> bytes, const std::string& name);
Image load_image(const std::string& path);

}  // namespace loom::image
