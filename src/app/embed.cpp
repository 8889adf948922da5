#include "app/embed.h"

#include "core/error.h"

namespace loom::app {

namespace {

const Encoder& text_encoder(const LoadedModel& m) {
  if (!m.encoder || m.encoder->info().vision) {
    fail(ErrorCode::kUnsupported, "{}: {} is not a text encoder (embeddings need bert)",
         m.spec.path, m.spec.architecture);
  }
  return *m.encoder;
}

}  // namespace

std::vector<int32_t> encoder_tokens(const LoadedModel& m, const std::string& text) {
  const Encoder& enc = text_encoder(m);
  std::vector<int32_t> ids = m.require_tokenizer().encode(text, /*add_special_tokens=*/true);
  if (static_cast<int64_t>(ids.size()) > enc.info().max_tokens) {
    fail(ErrorCode::kOutOfRange, "input of {} tokens is longer than the model's {} positions",
         ids.size(), enc.info().max_tokens);
  }
  return ids;
}

Pooling parse_pooling(const std::string& name) {
  if (name == "mean") return Pooling::kMean;
  if (name == "cls") return Pooling::kCls;
  fail(ErrorCode::kInvalidArgument, "pooling '{}': expected mean or cls", name);
}

std::vector<std::vector<float>> embed_token_lists(const LoadedModel& m,
                                                  const std::vector<std::vector<int32_t>>& inputs,
                                                  Pooling pooling, bool normalize) {
  text_encoder(m);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].empty()) fail(ErrorCode::kInvalidArgument, "input #{} has no tokens", i);
  }
  if (inputs.empty()) return {};
  // BERT's pad id is 0 in every released vocabulary; padded rows are masked anyway.
  const int32_t pad =
      m.spec.hparams.pad_token_id >= 0 ? static_cast<int32_t>(m.spec.hparams.pad_token_id) : 0;
  const TextBatch batch = TextBatch::from_sequences(inputs, pad);
  Activations hidden;
  m.encoder->encode(batch, hidden);
  const std::vector<float> host = m.backend->download_all(hidden);
  std::vector<std::vector<float>> out = pool_hidden(host, hidden.cols(), batch, pooling);
  if (normalize) {
    for (auto& v : out) l2_normalize(v);
  }
  return out;
}

}  // namespace loom::app
