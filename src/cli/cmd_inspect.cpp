// loom inspect PATH [--json]: what a model file holds — architecture, hyper-parameters,
// tokenizer, GGUF metadata and the tensor table.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/tensor.h"
#include "hub/hub.h"
#include "io/gguf.h"
#include "io/model_spec.h"

namespace loom::cli {

namespace {

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.2f} {}", v, units[u]);
}

// Metadata as JSON; long arrays (vocabularies) are summarised rather than dumped.
nlohmann::ordered_json value_to_json(const GgufValue& v) {
  if (const GgufArray* a = v.as_array()) {
    if (a->items.size() > 16) {
      return {{"type", "array"},
              {"element_type", std::string(gguf_type_name(a->elem_type))},
              {"count", a->items.size()}};
    }
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const GgufValue& item : a->items) arr.push_back(value_to_json(item));
    return arr;
  }
  if (const std::string* s = v.as_string()) return *s;
  if (auto b = v.as_bool()) return *b;
  if (v.type() == GgufType::kF32 || v.type() == GgufType::kF64) return *v.as_double();
  if (v.type() == GgufType::kU64) return *v.as_uint();
  return *v.as_int();
}

std::string clip(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, n - 3) + "...";
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return s;
}

int run_inspect(const std::string& path, bool json_out) {
  ModelSpec spec = load_model_spec(hub::resolve_model_argument(path));
  describe_hf_tokenizer(spec.tokenizer);
  const char* format = spec.format == ModelFormat::kGguf ? "gguf" : "hf-folder";

  if (json_out) {
    nlohmann::ordered_json j;
    j["path"] = spec.path;
    j["format"] = format;
    j["architecture"] = spec.architecture;
    j["architecture_supported"] = spec.architecture_known;
    if (!spec.hf_model_type.empty()) j["hf_model_type"] = spec.hf_model_type;
    j["name"] = spec.name;
    j["hparams"] = spec.hparams.to_json();
    nlohmann::ordered_json tok;
    tok["kind"] = spec.tokenizer.kind.empty() ? "none" : spec.tokenizer.kind;
    if (!spec.tokenizer.file.empty()) tok["file"] = spec.tokenizer.file;
    if (spec.tokenizer.n_tokens) tok["n_tokens"] = spec.tokenizer.n_tokens;
    if (!spec.tokenizer.pre.empty()) tok["pre"] = spec.tokenizer.pre;
    tok["chat_template"] = spec.tokenizer.has_chat_template;
    j["tokenizer"] = tok;
    if (const GgufFile* g = spec.gguf()) {
      nlohmann::ordered_json meta;
      for (const auto& [k, v] : g->metadata()) meta[k] = value_to_json(v);
      j["gguf"] = {{"version", g->version()}, {"alignment", g->alignment()}, {"metadata", meta}};
    }
    j["n_tensors"] = spec.tensors.size();
    j["total_bytes"] = spec.total_bytes();
    nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
    for (const TensorInfo& t : spec.tensors) {
      nlohmann::ordered_json e;
      e["name"] = t.name;
      if (t.source_name != t.name) e["source_name"] = t.source_name;
      e["type"] = std::string(dtype_name(t.dtype));
      e["shape"] = t.shape;
      e["bytes"] = t.n_bytes;
      tensors.push_back(e);
    }
    j["tensors"] = tensors;
    fmt::print("{}\n", j.dump(2));
    return 0;
  }

  fmt::print("model:         {} ({})\n", spec.path, format);
  fmt::print("architecture:  {}{}{}\n", spec.architecture,
             spec.hf_model_type.empty() || spec.hf_model_type == spec.architecture
                 ? ""
                 : fmt::format(" (HF model_type {})", spec.hf_model_type),
             spec.architecture_known ? "" : "  [not supported by loom]");
  fmt::print("name:          {}\n", spec.name);
  fmt::print("hyper-parameters:\n");
  const nlohmann::ordered_json hparams = spec.hparams.to_json();  // outlives the loop
  for (const auto& [k, v] : hparams.items()) {
    fmt::print("  {:<24} {}\n", k, v.dump());
  }
  if (spec.tokenizer.kind.empty()) {
    fmt::print("tokenizer:     none\n");
  } else {
    fmt::print("tokenizer:     {}{}, {} tokens, chat template: {}\n", spec.tokenizer.kind,
               spec.tokenizer.pre.empty() ? "" : fmt::format(" (pre {})", spec.tokenizer.pre),
               spec.tokenizer.n_tokens, spec.tokenizer.has_chat_template ? "yes" : "no");
    fmt::print("               {}\n", spec.tokenizer.file);
  }
  if (const GgufFile* g = spec.gguf()) {
    fmt::print("gguf:          version {}, alignment {}, {} metadata keys\n", g->version(),
               g->alignment(), g->metadata().size());
    for (const auto& [k, v] : g->metadata()) {
      fmt::print("  {:<40} {}\n", k, clip(v.to_display_string(6), 100));
    }
  }
  fmt::print("tensors:       {} tensors, {}\n", spec.tensors.size(),
             human_bytes(spec.total_bytes()));
  size_t width = 4;
  for (const TensorInfo& t : spec.tensors) width = std::max(width, t.name.size());
  fmt::print("  {:<{}}  {:<7}  {:<22}  {:>12}\n", "name", width, "type", "shape", "bytes");
  for (const TensorInfo& t : spec.tensors) {
    fmt::print("  {:<{}}  {:<7}  {:<22}  {:>12}\n", t.name, width, dtype_name(t.dtype),
               shape_to_string(t.shape), t.n_bytes);
  }
  return 0;
}

}  // namespace

Command add_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect",
                                 "Show a model's architecture, hyper-parameters, "
                                 "tokenizer and tensors (.gguf file or HF folder)");
  auto path = std::make_shared<std::string>();
  auto json_out = std::make_shared<bool>(false);
  cmd->add_option("path", *path, "a .gguf file or a Hugging Face model folder")->required();
  cmd->add_flag("--json", *json_out, "machine-readable output");
  return {cmd, [path, json_out] { return run_inspect(*path, *json_out); }};
}

}  // namespace loom::cli
