// Image decoding and the HF processors' preprocessing: loom's pixel_values for the reference
// image equal transformers' (measured max abs error 2.4e-7 for clip, 5.9e-8 for siglip, i.e.
// every uint8 after resizing is identical); malformed, truncated and enormous images are
// refused with the file's name before any large allocation.
#include <gtest/gtest.h>
#include <jpeglib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "model/reference_util.h"

namespace loom::image {
namespace {

std::vector<uint8_t> file_bytes(const std::string& path) {
  const MappedFile f = MappedFile::open(path);
  return std::vector<uint8_t>(f.data(), f.data() + f.size());
}

template <typename Fn>
void expect_error(Fn fn, ErrorCode code, const std::string& words) {
  try {
    fn();
    FAIL() << "no error (expected: " << words << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

double pixel_error(const char* model) {
  const std::string dir = test::ref_model_dir(model);
  const ImageProcessor p = ImageProcessor::from_folder(dir);
  const Image img = load_image(dir + "/image.png");
  EXPECT_EQ(img.width, 47);
  EXPECT_EQ(img.height, 61);
  const std::vector<float> px = p(img);
  const test::Reference ref = test::load_reference(model);
  const float* want = ref.f32("pixel_values");
  // A reference without the tensor must fail, not measure an error of 0 (the callers bound
  // the returned error).
  EXPECT_NE(want, nullptr) << model << ": the reference has no pixel_values";
  if (want == nullptr) return INFINITY;
  EXPECT_EQ(px.size(), 3u * 32 * 32);
  if (px.size() != 3u * 32 * 32) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < px.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(px[i]) - want[i]));
  }
  std::printf("%s: pixel_values max abs error %.3g\n", model, worst);
  return worst;
}

TEST(ImagePreprocess, ClipShortestEdgeResizeAndCenterCrop) {
  EXPECT_LT(pixel_error("clip-vision-tiny"), 1e-3);
}

TEST(ImagePreprocess, SiglipFixedSizeResize) {
  EXPECT_LT(pixel_error("siglip-vision-tiny"), 1e-3);
}

// What a resize produces is bounded, not only what was decoded: a 21 x 13 image resized to a
// shortest edge of 6934 (6934 x 11202, under the decoder's 89M-pixel limit) took 30 s in the
// sanitizer build (fuzz_image's timeout); configs asking for sides over 4096 are refused.
TEST(ImagePreprocess, ResizedSizeIsBounded) {
  Image tiny;
  tiny.width = 21;
  tiny.height = 13;
  tiny.rgb.assign(21 * 13 * 3, 128);
  ImageProcessor p;
  p.shortest_edge = 4096;
  p.height = p.width = 0;
  expect_error([&] { p(tiny); }, ErrorCode::kOutOfRange,
               "an image of 21 x 13 resized to a shortest edge of 4096 would be 6616 x 4096, "
               "over the limit of 16777216 pixels");
  p.shortest_edge = 24;  // the same image at a small edge still works
  EXPECT_EQ(p(tiny).size(), 3u * 24 * 38);
  expect_error(
      [] {
        ImageProcessor::from_json(R"({"size": {"height": 8192, "width": 8}})", "big/config.json");
      },
      ErrorCode::kCorruption, "big/config.json: 'size.height' must be an integer in [1, 4096]");
}

// A window of a resize is the same bytes as cropping the whole resize: random images of odd
// sizes, up and down, every filter and both kernels, windows at the edges and inside.
TEST(ImagePreprocess, ResizeWindowEqualsCropOfTheWholeResize) {
  std::mt19937 rng(7);
  const Resample filters[] = {Resample::kBicubic, Resample::kBilinear, Resample::kBox,
                              Resample::kLanczos, Resample::kHamming};
  for (int trial = 0; trial < 60; ++trial) {
    Image img;
    img.width = 1 + static_cast<int64_t>(rng() % 37);
    img.height = 1 + static_cast<int64_t>(rng() % 29);
    img.rgb.resize(img.width * img.height * 3);
    for (auto& v : img.rgb) v = static_cast<uint8_t>(rng());
    // Sometimes one side keeps its size (that pass copies).
    const int64_t w = trial % 5 == 0 ? img.width : 1 + static_cast<int64_t>(rng() % 53);
    const int64_t h = trial % 7 == 0 ? img.height : 1 + static_cast<int64_t>(rng() % 47);
    const Resample f = filters[trial % 5];
    const ResizeKernel kernel = trial % 2 == 0 ? ResizeKernel::kPil : ResizeKernel::kTorchvision;
    const Image whole = resize(img, w, h, f, kernel);
    Window win;
    win.width = 1 + static_cast<int64_t>(rng() % w);
    win.height = 1 + static_cast<int64_t>(rng() % h);
    win.left = static_cast<int64_t>(rng() % (w - win.width + 1));
    win.top = static_cast<int64_t>(rng() % (h - win.height + 1));
    const Image part = resize(img, w, h, f, kernel, win);
    ASSERT_EQ(part.width, win.width);
    ASSERT_EQ(part.height, win.height);
    for (int64_t y = 0; y < win.height; ++y) {
      for (int64_t x = 0; x < win.width; ++x) {
        for (int c = 0; c < 3; ++c) {
          ASSERT_EQ(part.at(y, x, c), whole.at(win.top + y, win.left + x, c))
              << "trial " << trial << " at " << x << "," << y;
        }
      }
    }
  }
  Image img;
  img.width = img.height = 4;
  img.rgb.assign(48, 1);
  EXPECT_THROW(resize(img, 8, 8, Resample::kBicubic, ResizeKernel::kPil, Window{4, 4, 5, 1}),
               Error);
}

TEST(ImagePreprocess, PilAndTorchvisionKernelsDifferOnlyByRounding) {
  const Image img = load_image(test::ref_model_dir("siglip-vision-tiny") + "/image.png");
  const Image a = resize(img, 32, 32, Resample::kBicubic, ResizeKernel::kPil);
  const Image b = resize(img, 32, 32, Resample::kBicubic, ResizeKernel::kTorchvision);
  int worst = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) worst = std::max(worst, std::abs(a.rgb[i] - b.rgb[i]));
  EXPECT_LE(worst, 1);
  // Same size: the pixels come back unchanged.
  const Image same = resize(img, img.width, img.height, Resample::kBicubic);
  EXPECT_EQ(same.rgb, img.rgb);
  const Image bl = resize(img, 20, 30, Resample::kBilinear);
  EXPECT_EQ(bl.width, 20);
  EXPECT_EQ(bl.height, 30);
}

TEST(ImageDecode, NotAnImage) {
  const std::string text = "this is not an image";
  expect_error(
      [&] {
        decode_image(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
            "notes.txt");
      },
      ErrorCode::kCorruption, "notes.txt: not a PNG or JPEG image");
}

TEST(ImageDecode, TruncatedPng) {
  std::vector<uint8_t> png = file_bytes(test::ref_model_dir("clip-vision-tiny") + "/image.png");
  png.resize(png.size() / 2);
  expect_error([&] { decode_image(png, "half.png"); }, ErrorCode::kCorruption, "half.png");
  png.resize(20);  // inside IHDR
  expect_error([&] { decode_image(png, "stub.png"); }, ErrorCode::kCorruption, "stub.png");
}

uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

void put32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

void chunk(std::vector<uint8_t>& png, const char* type, const std::vector<uint8_t>& data) {
  put32(png, static_cast<uint32_t>(data.size()));
  const size_t start = png.size();
  png.insert(png.end(), type, type + 4);
  png.insert(png.end(), data.begin(), data.end());
  put32(png, crc32(png.data() + start, png.size() - start));
}

TEST(ImageDecode, HugePngHeaderIsRefusedBeforeAllocating) {
  // A valid signature and IHDR for 100000 x 100000 RGB (30 GB decoded), then an empty IDAT.
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  put32(ihdr, 100000);
  put32(ihdr, 100000);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, deflate, no filter, no interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", {0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
  chunk(png, "IEND", {});
  expect_error([&] { decode_image(png, "bomb.png"); }, ErrorCode::kOutOfRange,
               "bomb.png: image of 100000 x 100000 pixels is over loom's limit");
}

TEST(ImageDecode, HugeJpegHeaderIsRefusedBeforeAllocating) {
  // SOI, a baseline SOF0 for 60000 x 60000 grey, SOS: enough for jpeg_read_header.
  const std::vector<uint8_t> jpg = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0xEA, 0x60, 0xEA,
                                    0x60, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xDA, 0x00, 0x08, 0x01,
                                    0x01, 0x00, 0x00, 0x3F, 0x00, 0x00, 0x00, 0xFF, 0xD9};
  expect_error([&] { decode_image(jpg, "bomb.jpg"); }, ErrorCode::kOutOfRange,
               "bomb.jpg: image of 60000 x 60000 pixels");
}

std::vector<uint8_t> encode_jpeg(int w, int h) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &out, &size);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_start_compress(&c, TRUE);
  std::vector<uint8_t> row(w * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w * 3; ++x) row[x] = static_cast<uint8_t>((x * 7 + y * 13) & 0xFF);
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> v(out, out + size);
  std::free(out);
  return v;
}

TEST(ImageDecode, JpegAndTruncatedJpeg) {
  std::vector<uint8_t> jpg = encode_jpeg(40, 24);
  const Image img = decode_image(jpg, "ok.jpg");
  EXPECT_EQ(img.width, 40);
  EXPECT_EQ(img.height, 24);
  EXPECT_EQ(img.rgb.size(), 40u * 24 * 3);
  jpg.resize(jpg.size() / 2);
  expect_error([&] { decode_image(jpg, "cut.jpg"); }, ErrorCode::kCorruption,
               "cut.jpg: JPEG data is corrupt or truncated");
}

TEST(ImageDecode, MissingFileIsNamed) {
  expect_error([] { load_image("/nonexistent/x.png"); }, ErrorCode::kNotFound,
               "/nonexistent/x.png");
}

}  // namespace
}  // namespace loom::image
