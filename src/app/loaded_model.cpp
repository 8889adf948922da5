#include "app/loaded_model.h"
#include "hub/hub.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <thread>

#include "backend/process_group.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/json_util.h"
#include "template/chat_template.h"
#include "tokenizer/gguf_vocab.h"

namespace loom::app {

const tokenizer::Tokenizer& LoadedModel::require_tokenizer() const {
  if (!tokenizer && !tokenizer_error.empty()) {
    fail(ErrorCode::kUnsupported, "{}; use --ids", tokenizer_error);
  }
  if (!tokenizer) {
    fail(ErrorCode::kNotFound,
         "{}: the model has no tokenizer (tokenizer.json or GGUF vocabulary); use --ids",
         spec.path);
  }
  return *tokenizer;
}

std::vector<int32_t> LoadedModel::eos_ids() const {
  std::vector<int32_t> ids;
  for (int64_t id : spec.hparams.eos_token_ids) ids.push_back(static_cast<int32_t>(id));
  if (tokenizer && tokenizer->special_ids().eos) {
    int32_t e = *tokenizer->special_ids().eos;
    if (std::find(ids.begin(), ids.end(), e) == ids.end()) ids.push_back(e);
  }
  return ids;
}

LoadedModel load_model(const std::string& model, int threads, bool want_tokenizer,
                       bool allow_encoder, bool batch_invariant, const std::string& device) {
  const std::string path = hub::resolve_model_argument(model);
  LoadedModel m;
  m.spec = load_model_spec(path);
  m.device = device;
  // Under mpirun every rank holds its shard of a language model (an encoder runs whole on each):
  // its tensor-parallel part of its pipeline stage's layers.
  const std::shared_ptr<Communicator> group =
      is_encoder_architecture(m.spec.architecture) ? nullptr : process_group();
  const PipelineLayout layout = group ? pipeline_layout(pipeline_stages()) : PipelineLayout{};
  if (group) {
    check_same_on_every_rank(
        m.spec.fingerprint(),
        fmt::format("the model {} (its tensors, types or values)", path).c_str());
  }
  m.backend = make_backend({device, threads > 0 ? threads : default_threads(), batch_invariant,
                            layout.world > 1 ? layout.stage_group : nullptr});
  if (is_encoder_architecture(m.spec.architecture)) {
    if (!allow_encoder) {
      fail(ErrorCode::kUnsupported,
           "{}: {} is an encoder, not a language model (use loom embed, embed-image or serve)",
           path, m.spec.architecture);
    }
    m.encoder = load_encoder(m.spec, *m.backend);
  } else {
    m.model = load_causal_lm(m.spec, *m.backend,
                             ShardSpec{layout.rank, layout.world, layout.stage, layout.stages,
                                       layout.stages > 1 ? group.get() : nullptr});
    // One token through the model: the backend prepares its weights (the CPU backend repacks
    // Q4_0/Q4_K matrices on first use) here, not in the first request's time to first token.
    const std::unique_ptr<KvCache> cache = m.model->make_kv_cache(1, 16);
    const int32_t block = 0, token = 0;
    Batch batch;
    batch.add_sequence(std::span<const int32_t>(&token, 1), 0, std::span<const int32_t>(&block, 1),
                       false);
    Activations logits;
    m.model->forward(batch, *cache, logits);
  }
  if (want_tokenizer) {
    try {
      m.tokenizer = load_tokenizer(m.spec.path, m.spec.gguf());
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kUnsupported) throw;
      m.tokenizer_error = e.what();
    }
    m.chat_templates = ModelChatTemplates::load(m.spec.path, m.spec.gguf());
  }
  return m;
}

std::optional<tokenizer::Tokenizer> load_tokenizer(const std::string& path, const GgufFile* gguf) {
  if (gguf != nullptr) {
    if (gguf->find("tokenizer.ggml.model") == nullptr) return std::nullopt;
    return tokenizer::tokenizer_from_gguf(*gguf);
  }
  const std::filesystem::path file = std::filesystem::path(path) / "tokenizer.json";
  if (!std::filesystem::exists(file)) return std::nullopt;
  return tokenizer::Tokenizer::from_hf_json(file);
}

const tokenizer::Tokenizer& TokenizerModel::require_tokenizer() const {
  if (!tokenizer) {
    fail(ErrorCode::kNotFound, "{}: the model has no tokenizer (tokenizer.json or GGUF vocabulary)",
         path);
  }
  return *tokenizer;
}

TokenizerModel load_tokenizer_model(const std::string& model) {
  namespace fs = std::filesystem;
  const std::string path = hub::resolve_model_argument(model);
  TokenizerModel m;
  m.path = path;
  std::error_code ec;  // a path that cannot be examined is opened as a file, which reports it
  if (fs::is_directory(path, ec)) {
    if (!fs::exists(fs::path(path) / "tokenizer.json") &&
        fs::exists(fs::path(path) / "tokenizer.model")) {
      fail(ErrorCode::kUnsupported,
           "{}: only tokenizer.model (SentencePiece) is present; loom reads tokenizer.json", path);
    }
  } else {
    // GgufFile::open names the path when it is missing or not a GGUF file.
    m.gguf = std::make_shared<const GgufFile>(GgufFile::open(path));
  }
  m.tokenizer = load_tokenizer(path, m.gguf.get());
  m.chat_templates = ModelChatTemplates::load(path, m.gguf.get());
  return m;
}

std::vector<int32_t> parse_id_list(const std::string& text) {
  std::vector<int32_t> ids;
  std::string s = text;
  std::replace_if(
      s.begin(), s.end(), [](char c) { return c == '[' || c == ']' || c == ','; }, ' ');
  size_t i = 0, index = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t')) ++i;
    if (i >= s.size()) break;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\n' && s[j] != '\t') ++j;
    int32_t v = 0;
    auto [p, ec] = std::from_chars(s.data() + i, s.data() + j, v);
    if (ec != std::errc() || p != s.data() + j || v < 0) {
      fail(ErrorCode::kInvalidArgument, "token id #{} '{}' is not a non-negative integer", index,
           s.substr(i, j - i));
    }
    ids.push_back(v);
    ++index;
    i = j;
  }
  return ids;
}

std::string render_chat(const LoadedModel& m, const nlohmann::ordered_json& messages,
                        bool add_generation_prompt) {
  jinja::ChatRequest req;
  req.messages = messages;
  req.add_generation_prompt = add_generation_prompt;
  return m.chat_templates.apply(req);
}

int default_threads() {
  // The ranks of an mpirun group on this host share its cores.
  const int n = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, n / std::max(1, local_ranks()));
}

}  // namespace loom::app
