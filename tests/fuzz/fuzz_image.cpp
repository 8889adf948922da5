// libFuzzer target: image bytes (PNG, JPEG or anything) decoded and preprocessed as the vision
// encoders do, and a preprocessor_config.json. An input "CONFIG\n#image#\nBYTES" gives both;
// otherwise the bytes are the image, preprocessed as CLIP (shortest edge + center crop) and
// SigLIP (fixed size) with both resize kernels. Decoding and preprocessing must end in pixel
// values or a loom::Error, with memory bounded by the pixel limits whatever the header claims.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "image/image.h"
#include "image/preprocess.h"

namespace {

void run(const loom::image::ImageProcessor& p, const loom::image::Image& img) {
  try {
    const std::vector<float> px = p(img);
    const auto [h, w] = p.output_size();
    if (h > 0 && w > 0 && px.size() != static_cast<size_t>(3 * h * w)) __builtin_trap();
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using loom::image::ImageProcessor;
  const loom::fuzz::Parts parts = loom::fuzz::split(loom::fuzz::as_text(data, size), "\n#image#\n");
  try {
    if (parts.has_second) {
      const ImageProcessor p =
          ImageProcessor::from_json(parts.first, "fuzz/preprocessor_config.json");
      const auto bytes = reinterpret_cast<const uint8_t*>(parts.second.data());
      run(p, loom::image::decode_image({bytes, parts.second.size()}, "fuzz.img"));
      return 0;
    }
    const loom::image::Image img = loom::image::decode_image({data, size}, "fuzz.img");
    if (img.width <= 0 || img.height <= 0 ||
        img.rgb.size() != static_cast<size_t>(img.width * img.height * 3)) {
      __builtin_trap();
    }
    ImageProcessor clip;
    clip.shortest_edge = 24;
    clip.do_center_crop = true;
    clip.crop_height = clip.crop_width = 16;
    clip.height = clip.width = 0;
    ImageProcessor siglip;
    siglip.height = 20;
    siglip.width = 12;
    siglip.resample = loom::image::Resample::kBilinear;
    for (auto kernel : {loom::image::ResizeKernel::kPil, loom::image::ResizeKernel::kTorchvision}) {
      clip.kernel = siglip.kernel = kernel;
      run(clip, img);
      run(siglip, img);
    }
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
