// loom embed-image -m MODEL IMAGE... [--pixel-values] [-t THREADS]
// Runs a vision tower (clip, siglip) on PNG/JPEG files, preprocessed as the model's
// preprocessor_config.json says (see image/preprocess.h), and prints one JSON object per image:
//   {"image": PATH, "pooler_output": [...], "last_hidden_state_shape": [1, tokens, hidden]}
// with --last-hidden-state adding "last_hidden_state" (rows of floats) and --pixel-values adding
// the preprocessed "pixel_values" [3, H, W] flattened (to compare with transformers').
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "app/loaded_model.h"
#include "cli/commands.h"
#include "core/error.h"
#include "image/image.h"
#include "image/preprocess.h"

namespace loom::cli {

namespace {

struct EmbedImageArgs {
  std::string model;
  std::vector<std::string> images;
  bool pixel_values = false, last_hidden = false;
  int threads = 0;
  std::string device = "cpu";
};

int run_embed_image(const EmbedImageArgs& a) {
  app::LoadedModel m =
      app::load_model(a.model, a.threads, false, /*allow_encoder=*/true, false, a.device);
  if (!m.encoder || !m.encoder->info().vision) {
    fail(ErrorCode::kUnsupported, "{}: {} is not a vision encoder (embed-image needs clip/siglip)",
         a.model, m.spec.architecture);
  }
  const EncoderInfo& info = m.encoder->info();
  const image::ImageProcessor proc = image::ImageProcessor::from_folder(m.spec.path);
  const auto [h, w] = proc.output_size();
  if (h != info.image_size || w != info.image_size || info.n_channels != 3) {
    fail(ErrorCode::kCorruption,
         "{}: the preprocessor makes {} x {} images but the model takes {} x {} with {} channels",
         a.model, w, h, info.image_size, info.image_size, info.n_channels);
  }
  Activations hidden, pooled;
  for (const std::string& path : a.images) {
    const std::vector<float> px = proc(image::load_image(path));
    m.encoder->encode_images(px, 1, hidden, pooled);
    nlohmann::ordered_json j;
    j["image"] = path;
    j["pooler_output"] = m.backend->download_all(pooled);
    j["last_hidden_state_shape"] = {1, hidden.rows(), hidden.cols()};
    if (a.last_hidden) {
      auto rows = nlohmann::ordered_json::array();
      const std::vector<float> hs = m.backend->download_all(hidden);
      for (int64_t r = 0; r < hidden.rows(); ++r) {
        rows.push_back(std::vector<float>(hs.begin() + r * hidden.cols(),
                                          hs.begin() + (r + 1) * hidden.cols()));
      }
      j["last_hidden_state"] = std::move(rows);
    }
    if (a.pixel_values) j["pixel_values"] = px;
    fmt::print("{}\n", j.dump());
  }
  return 0;
}

}  // namespace

Command add_embed_image(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("embed-image",
                         "Run a vision encoder (clip, siglip) on PNG/JPEG images; one JSON object "
                         "per image with pooler_output");
  auto a = std::make_shared<EmbedImageArgs>();
  cmd->add_option("-m,--model", a->model, "a Hugging Face vision-tower folder")->required();
  cmd->add_option("images", a->images, "PNG or JPEG files")->required();
  cmd->add_flag("--last-hidden-state", a->last_hidden, "also print last_hidden_state");
  cmd->add_flag("--pixel-values", a->pixel_values, "also print the preprocessed pixel values");
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)");
  add_device_option(*cmd, a->device);
  return {cmd, [a] { return run_embed_image(*a); }};
}

}  // namespace loom::cli
