#include "image/preprocess.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numbers>

#include "core/error.h"
#include "core/mapped_file.h"

namespace loom::image {

namespace {

// PIL's filters (libImaging/Resample.c), each with its support radius.
double bicubic(double x) {
  constexpr double a = -0.5;  // PIL's (and Catmull-Rom's) a
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double bilinear(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}
double box(double x) {
  return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
}
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= std::numbers::pi;
  return std::sin(x) / x;
}
double lanczos(double x) {
  return -3.0 < x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
}
double hamming(double x) {
  x = std::abs(x);
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x *= std::numbers::pi;
  return std::sin(x) / x * (0.54 + 0.46 * std::cos(x));
}

struct Filter {
  double (*fn)(double);
  double support;
};

Filter filter_for(Resample r) {
  switch (r) {
    case Resample::kBicubic:
      return {bicubic, 2.0};
    case Resample::kBilinear:
      return {bilinear, 1.0};
    case Resample::kBox:
      return {box, 0.5};
    case Resample::kLanczos:
      return {lanczos, 3.0};
    case Resample::kHamming:
      return {hamming, 1.0};
    case Resample::kNearest:
      break;
  }
  fail(ErrorCode::kUnsupported, "resampling filter {} (nearest) is not supported",
       static_cast<int>(r));
}

// PIL computes 8-bit resampling in fixed point with this many fraction bits.
constexpr int kPrecisionBits = 32 - 8 - 2;

// Per output pixel: the first input pixel and the fixed-point weights with `bits` fraction
// bits (PIL's precompute_coeffs + normalize_coeffs_8bpc; torchvision's
// _compute_index_ranges_int16_weights).
struct Coeffs {
  std::vector<int> first, count;
  std::vector<int32_t> k;  // out_size x ksize
  int ksize = 0;
  int bits = kPrecisionBits;
};

Coeffs precompute(int64_t in_size, int64_t out_size, const Filter& f, bool torch_int16) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = f.support * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(out_size * c.ksize, 0);
  std::vector<double> w(out_size * c.ksize, 0.0);
  double w_max = 0.0;
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = (static_cast<double>(xx) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // Both truncate (int) after adding 0.5.
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = static_cast<int>(in_size);
    xmax -= xmin;
    double ww = 0.0;
    double* k = &w[xx * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      k[x] = f.fn((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
      w_max = std::max(w_max, k[x]);
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  if (torch_int16) {
    // torchvision stores int16 weights with the most fraction bits that keep the largest
    // weight below 2^15.
    int bits = 0;
    for (; bits < 22; ++bits) {
      if (static_cast<int>(0.5 + w_max * (1 << (bits + 1))) >= (1 << 15)) break;
    }
    c.bits = bits;
  }
  for (size_t i = 0; i < w.size(); ++i) {
    const double v = w[i] * static_cast<double>(1 << c.bits);
    // Round half away from zero, then truncate to int.
    c.k[i] = v < 0 ? static_cast<int32_t>(-0.5 + v) : static_cast<int32_t>(0.5 + v);
  }
  return c;
}

uint8_t clip8(int64_t v, int bits) {
  v >>= bits;  // arithmetic shift: floor, as PIL's clip8 lookup index
  return static_cast<uint8_t>(std::clamp<int64_t>(v, 0, 255));
}

}  // namespace

Image resize(const Image& in, int64_t width, int64_t height, Resample r, ResizeKernel kernel) {
  return resize(in, width, height, r, kernel, Window{0, 0, height, width});
}

Image resize(const Image& in, int64_t width, int64_t height, Resample r, ResizeKernel kernel,
             const Window& win) {
  if (width <= 0 || height <= 0) {
    fail(ErrorCode::kInvalidArgument, "resize to {} x {}", width, height);
  }
  if (win.top < 0 || win.left < 0 || win.height <= 0 || win.width <= 0 ||
      win.top + win.height > height || win.left + win.width > width) {
    fail(ErrorCode::kInvalidArgument, "window {} x {} at ({}, {}) outside a resize to {} x {}",
         win.width, win.height, win.left, win.top, width, height);
  }
  const Filter f = filter_for(r);
  const bool torch = kernel == ResizeKernel::kTorchvision;
  // Both resample horizontally first (every input row, the window's columns), then vertically
  // (the window's rows), each pass rounding to 8 bits. A pass whose size does not change copies.
  Image cols;
  cols.width = win.width;
  cols.height = in.height;
  cols.rgb.resize(cols.width * cols.height * 3);
  if (width != in.width) {
    const Coeffs c = precompute(in.width, width, f, torch);
    for (int64_t y = 0; y < cols.height; ++y) {
      for (int64_t x = 0; x < win.width; ++x) {
        const int64_t ox = win.left + x;
        const int32_t* k = &c.k[ox * c.ksize];
        for (int ch = 0; ch < 3; ++ch) {
          int64_t ss = int64_t{1} << (c.bits - 1);
          for (int i = 0; i < c.count[ox]; ++i) ss += int64_t{in.at(y, c.first[ox] + i, ch)} * k[i];
          cols.rgb[(y * win.width + x) * 3 + ch] = clip8(ss, c.bits);
        }
      }
    }
  } else {
    for (int64_t y = 0; y < cols.height; ++y) {
      std::copy_n(&in.rgb[(y * in.width + win.left) * 3], win.width * 3,
                  &cols.rgb[y * win.width * 3]);
    }
  }
  Image out;
  out.width = win.width;
  out.height = win.height;
  out.rgb.resize(out.width * out.height * 3);
  if (height != in.height) {
    // Row at a time: each output row is a weighted sum of whole input rows (contiguous, so the
    // loop vectorizes; integer sums, so the order changes no bit).
    const Coeffs c = precompute(in.height, height, f, torch);
    const int64_t row = win.width * 3;
    std::vector<int64_t> acc(row);
    for (int64_t y = 0; y < win.height; ++y) {
      const int64_t oy = win.top + y;
      const int32_t* k = &c.k[oy * c.ksize];
      std::fill(acc.begin(), acc.end(), int64_t{1} << (c.bits - 1));
      for (int i = 0; i < c.count[oy]; ++i) {
        const uint8_t* src = &cols.rgb[(c.first[oy] + i) * row];
        const int64_t w = k[i];
        for (int64_t j = 0; j < row; ++j) acc[j] += src[j] * w;
      }
      uint8_t* dst = &out.rgb[y * row];
      for (int64_t j = 0; j < row; ++j) dst[j] = clip8(acc[j], c.bits);
    }
  } else {
    std::copy_n(&cols.rgb[win.top * win.width * 3], win.height * win.width * 3, out.rgb.begin());
  }
  return out;
}

namespace {

// An integer field of preprocessor_config.json in [lo, hi], named in the error otherwise.
int64_t bounded_int(const nlohmann::json& v, const std::string& file, std::string_view key,
                    int64_t lo, int64_t hi) {
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi ||
      (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))) {
    std::string shown = v.dump();
    if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
    fail(ErrorCode::kCorruption, "{}: '{}' must be an integer in [{}, {}], got {}", file, key, lo,
         hi, shown);
  }
  return v.get<int64_t>();
}

// HF's size dicts: {"shortest_edge": n}, {"height": h, "width": w}, or a bare int (a square for
// SigLIP; the shortest edge for processors that crop, as get_size_dict(default_to_square=False)).
void read_size(const nlohmann::json& j, const std::string& file, bool crops, ImageProcessor& p) {
  auto side = [&](const nlohmann::json& v, std::string_view key) {
    return bounded_int(v, file, key, 1, ImageProcessor::kMaxSide);
  };
  if (j.is_number()) {
    (crops ? p.shortest_edge : p.height) = side(j, "size");
    if (!crops) p.width = p.height;
    return;
  }
  if (j.is_object() && j.contains("shortest_edge")) {
    p.shortest_edge = side(j["shortest_edge"], "size.shortest_edge");
    return;
  }
  if (j.is_object() && j.contains("height") && j.contains("width")) {
    p.height = side(j["height"], "size.height");
    p.width = side(j["width"], "size.width");
    return;
  }
  std::string shown = j.dump();
  if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
  fail(ErrorCode::kUnsupported, "{}: size {} is not supported", file, shown);
}

}  // namespace

ImageProcessor ImageProcessor::from_folder(const std::string& dir) {
  const std::string file = (std::filesystem::path(dir) / "preprocessor_config.json").string();
  if (!std::filesystem::exists(file)) {
    fail(ErrorCode::kNotFound, "{}: the model has no preprocessor_config.json", dir);
  }
  return from_json(read_text_file(file), file);
}

ImageProcessor ImageProcessor::from_json(std::string_view text, const std::string& file) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::kCorruption, "{}: not valid JSON: {}", file, e.what());
  }
  ImageProcessor p;
  try {
    p.do_convert_rgb = j.value("do_convert_rgb", true);
    p.do_resize = j.value("do_resize", true);
    p.do_center_crop = j.value("do_center_crop", false);
    p.do_rescale = j.value("do_rescale", true);
    p.do_normalize = j.value("do_normalize", true);
    p.rescale_factor = j.value("rescale_factor", 1.0 / 255.0);
    if (!std::isfinite(p.rescale_factor) || std::fabs(p.rescale_factor) > 1e30) {
      fail(ErrorCode::kCorruption, "{}: rescale_factor {} is not a usable value", file,
           p.rescale_factor);
    }
    if (!j.is_object()) fail(ErrorCode::kCorruption, "{}: expected a JSON object", file);
    if (j.contains("resample")) {
      p.resample = static_cast<Resample>(bounded_int(j["resample"], file, "resample", 0, 5));
    }
    if (j.contains("size")) read_size(j["size"], file, p.do_center_crop, p);
    if (p.do_center_crop && j.contains("crop_size")) {
      ImageProcessor c;
      read_size(j["crop_size"], file, false, c);
      if (c.height <= 0)
        fail(ErrorCode::kUnsupported, "{}: crop_size must give height/width", file);
      p.crop_height = c.height;
      p.crop_width = c.width;
    }
    for (const char* key : {"image_mean", "image_std"}) {
      if (!j.contains(key)) continue;
      const auto v = j[key].get<std::vector<double>>();
      if (v.size() != 3) fail(ErrorCode::kUnsupported, "{}: {} must have 3 entries", file, key);
      auto& dst = std::string(key) == "image_mean" ? p.mean : p.std;
      for (int i = 0; i < 3; ++i) {
        if (!std::isfinite(v[i]) || std::fabs(v[i]) > 1e30 ||
            (dst.data() == p.std.data() && v[i] == 0.0)) {
          fail(ErrorCode::kCorruption, "{}: {}[{}] = {} is not a usable value", file, key, i, v[i]);
        }
        dst[i] = static_cast<float>(v[i]);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::kCorruption, "{}: unexpected value: {}", file, e.what());
  }
  if (p.do_resize && p.shortest_edge <= 0 && (p.height <= 0 || p.width <= 0)) {
    fail(ErrorCode::kCorruption, "{}: do_resize without a usable size", file);
  }
  return p;
}

std::pair<int64_t, int64_t> ImageProcessor::output_size() const {
  if (do_center_crop) return {crop_height, crop_width};
  return {height, width};
}

Image ImageProcessor::center_crop(const Image& img, int64_t w, int64_t h, bool resized) const {
  if (h < crop_height || w < crop_width) {
    fail(ErrorCode::kUnsupported, "image of {} x {} is smaller than the {} x {} crop", w, h,
         crop_width, crop_height);
  }
  // transformers' numpy center_crop: top = (h - crop_h) // 2; torchvision's center_crop
  // (the fast processors): int(round((h - crop_h) / 2.0)), Python's round half to even.
  auto offset = [&](int64_t extra) {
    return kernel == ResizeKernel::kPil ? extra / 2
                                        : static_cast<int64_t>(std::nearbyint(extra / 2.0));
  };
  const Window win{offset(h - crop_height), offset(w - crop_width), crop_height, crop_width};
  if (resized) return resize(img, w, h, resample, kernel, win);
  Image c;
  c.width = crop_width;
  c.height = crop_height;
  c.rgb.resize(c.width * c.height * 3);
  for (int64_t y = 0; y < crop_height; ++y) {
    std::copy_n(&img.rgb[((win.top + y) * img.width + win.left) * 3], crop_width * 3,
                &c.rgb[y * crop_width * 3]);
  }
  return c;
}

std::vector<float> ImageProcessor::operator()(const Image& img) const {
  Image cur = img;  // decode_image already gives RGB (do_convert_rgb)
  if (do_resize) {
    int64_t h = height, w = width;
    if (shortest_edge > 0) {
      // transformers' get_resize_output_image_size(default_to_square=False): the short side
      // becomes shortest_edge, the long side int(shortest_edge * long / short) (truncated).
      const bool portrait = img.width <= img.height;
      const int64_t s = portrait ? img.width : img.height, l = portrait ? img.height : img.width;
      const auto long_side = static_cast<int64_t>(static_cast<double>(shortest_edge) *
                                                  static_cast<double>(l) / static_cast<double>(s));
      h = portrait ? long_side : shortest_edge;
      w = portrait ? shortest_edge : long_side;
      // A thin image's long side grows with it (1 x 65535 at shortest_edge 224 would be
      // 224 x 14.7M), and a tiny one grows to the shortest edge: bound what the resize makes.
      if (long_side > kMaxImageSide ||
          static_cast<double>(long_side) * shortest_edge > static_cast<double>(kMaxResizedPixels)) {
        fail(ErrorCode::kOutOfRange,
             "an image of {} x {} resized to a shortest edge of {} would be {} x {}, over the "
             "limit of {} pixels",
             img.width, img.height, shortest_edge, portrait ? shortest_edge : long_side,
             portrait ? long_side : shortest_edge, kMaxResizedPixels);
      }
    }
    // A center crop is computed as part of the resize: only the pixels it keeps.
    if (!do_center_crop)
      cur = resize(cur, w, h, resample, kernel);
    else
      cur = center_crop(cur, w, h, true);
  } else if (do_center_crop) {
    cur = center_crop(cur, cur.width, cur.height, false);
  }
  const int64_t hw = cur.width * cur.height;
  std::vector<float> out(3 * hw);
  for (int64_t i = 0; i < hw; ++i) {
    for (int ch = 0; ch < 3; ++ch) {
      // numpy: (uint8 as float64 * rescale_factor) as float32, then (x - mean) / std in float32.
      float v = cur.rgb[i * 3 + ch];
      if (do_rescale)
        v = static_cast<float>(static_cast<double>(cur.rgb[i * 3 + ch]) * rescale_factor);
      if (do_normalize) v = (v - mean[ch]) / std[ch];
      out[ch * hw + i] = v;
    }
  }
  return out;
}

}  // namespace loom::image
