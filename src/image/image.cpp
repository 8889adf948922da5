#include "image/image.h"

#include <jpeglib.h>
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"

namespace loom::image {

namespace {

void check_size(int64_t w, int64_t h, const std::string& name) {
  if (w <= 0 || h <= 0) fail(ErrorCode::kCorruption, "{}: image of {} x {} pixels", name, w, h);
  if (w > kMaxImageSide || h > kMaxImageSide || w * h > kMaxImagePixels) {
    fail(ErrorCode::kOutOfRange,
         "{}: image of {} x {} pixels is over loom's limit of {} pixels ({} per side)", name, w, h,
         kMaxImagePixels, kMaxImageSide);
  }
}

Image decode_png(std::span<const uint8_t> bytes, const std::string& name) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  // The simplified API keeps libpng's setjmp/longjmp inside libpng and reports in img.message.
  if (png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()) == 0) {
    const std::string msg = img.message;
    png_image_free(&img);
    fail(ErrorCode::kCorruption, "{}: not a readable PNG image: {}", name, msg);
  }
  try {
    check_size(img.width, img.height, name);
  } catch (...) {
    png_image_free(&img);
    throw;
  }
  // RGBA, then drop alpha: PIL's RGBA -> RGB conversion discards alpha (no compositing).
  img.format = PNG_FORMAT_RGBA;
  std::vector<uint8_t> rgba(PNG_IMAGE_SIZE(img));
  if (png_image_finish_read(&img, nullptr, rgba.data(), 0, nullptr) == 0) {
    const std::string msg = img.message;
    png_image_free(&img);
    fail(ErrorCode::kCorruption, "{}: PNG data is corrupt or truncated: {}", name, msg);
  }
  Image out;
  out.width = img.width;
  out.height = img.height;
  out.rgb.resize(out.width * out.height * 3);
  for (int64_t i = 0; i < out.width * out.height; ++i) {
    std::memcpy(&out.rgb[i * 3], &rgba[i * 4], 3);
  }
  png_image_free(&img);
  return out;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegError*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// libjpeg only warns on a truncated or corrupt stream and fills the rest with grey; PIL raises
// "image file is truncated" there, so a warning is an error here too.
void jpeg_on_message(j_common_ptr c, int level) {
  if (level < 0) jpeg_on_error(c);
}

Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& name) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  Image out;  // constructed before setjmp: a longjmp back here skips no destructor
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_on_error;
  err.mgr.emit_message = jpeg_on_message;
  if (setjmp(err.jump) != 0) {
    jpeg_destroy_decompress(&cinfo);
    fail(ErrorCode::kCorruption, "{}: JPEG data is corrupt or truncated: {}", name, err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  const int64_t w = cinfo.image_width, h = cinfo.image_height;
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide || w * h > kMaxImagePixels) {
    jpeg_destroy_decompress(&cinfo);
    check_size(w, h, name);
  }
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    fail(ErrorCode::kUnsupported, "{}: CMYK JPEG images are not supported", name);
  }
  cinfo.out_color_space = JCS_RGB;  // grey is replicated, as PIL's L -> RGB
  jpeg_start_decompress(&cinfo);
  out.width = cinfo.output_width;
  out.height = cinfo.output_height;
  out.rgb.resize(out.width * out.height * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.rgb.data() + static_cast<int64_t>(cinfo.output_scanline) * out.width * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return out;
}

}  // namespace

Image decode_image(std::span<const uint8_t> bytes, const std::string& name) {
  static constexpr uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0) {
    return decode_png(bytes, name);
  }
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
    return decode_jpeg(bytes, name);
  }
  fail(ErrorCode::kCorruption, "{}: not a PNG or JPEG image ({} bytes)", name, bytes.size());
}

Image load_image(const std::string& path) {
  const MappedFile f = MappedFile::open(path);
  return decode_image(std::span<const uint8_t>(f.data(), f.size()), path);
}

}  // namespace loom::image
