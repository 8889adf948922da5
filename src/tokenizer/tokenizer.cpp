#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {

Tokenizer::Tokenizer(TokenizerParts parts)
    : normalizer_(std::move(parts.normalizer)),
      pre_tokenizer_(std::move(parts.pre_tokenizer)),
      model_(std::move(parts.model)),
      post_processor_(std::move(parts.post_processor)),
      decoder_(std::move(parts.decoder)),
      added_(std::move(parts.added_tokens), normalizer_.get()),
      special_(parts.special) {
  LOOM_ASSERT(model_ != nullptr);
  if (!special_.unk) special_.unk = model_->unk_id();
  byte_runs_ = decoder_ && decoder_->decodes_byte_runs();
}

bool Tokenizer::is_byte_run_token(int32_t id) const {
  if (!byte_runs_) return false;
  const std::string* t = token_string(id);
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
  };
  return t != nullptr && t->size() == 6 && t->compare(0, 3, "<0x") == 0 && (*t)[5] == '>' &&
         hex((*t)[3]) && hex((*t)[4]);
}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string sanitized;
  if (!is_valid_utf8(text)) {
    sanitized = sanitize_utf8(text);
    text = sanitized;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);

  std::vector<AddedVocabulary::Segment> raw_segments, normalized_segments;
  added_.split(text, /*normalized_set=*/false, raw_segments);
  for (const auto& raw : raw_segments) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    std::string normalized(text.substr(raw.begin, raw.end - raw.begin));
    if (normalizer_) normalizer_->normalize(normalized);
    normalized_segments.clear();
    added_.split(normalized, /*normalized_set=*/true, normalized_segments);
    for (const auto& seg : normalized_segments) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      Piece piece{normalized.substr(seg.begin, seg.end - seg.begin),
                  raw.begin == 0 && seg.begin == 0};
      // Pieces stream straight into the model; no list of all pieces is built.
      if (pre_tokenizer_) {
        pre_tokenizer_->split(std::move(piece), [&](Piece&& p) { model_->tokenize(p.text, ids); });
      } else {
        model_->tokenize(piece.text, ids);
      }
    }
  }
  if (post_processor_) post_processor_->process(ids, add_special_tokens);
  return ids;
}

const std::string* Tokenizer::token_string(int32_t id) const {
  if (const AddedToken* added = added_.find_by_id(id)) return &added->content;
  return model_->id_to_token(id);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* token = token_string(id);
    if (token == nullptr) continue;
    if (skip_special_tokens && added_.is_special_content(*token)) continue;
    tokens.push_back(*token);
  }
  std::string out;
  if (decoder_) {
    decoder_->decode_chain(tokens);
    for (const std::string& t : tokens) out += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
  }
  // Vocabulary strings from a GGUF file are not checked to be UTF-8 (a tokenizer.json's are,
  // by the JSON parser): whatever they hold, decoded text is valid UTF-8, with U+FFFD for
  // invalid bytes as HF's lossy decoding gives (found by fuzz_gguf_vocab).
  if (!is_valid_utf8(out)) out = sanitize_utf8(out);
  return out;
}

std::optional<std::string> Tokenizer::token_bytes(int32_t id) const {
  const std::string* token = token_string(id);
  if (token == nullptr) return std::nullopt;
  std::vector<std::string> pieces = {*token};
  if (decoder_) decoder_->decode_chain_raw(pieces);
  std::string out;
  for (const std::string& p : pieces) out += p;
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  const std::string* token = token_string(id);
  return token ? *token : std::string();
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = added_.find(token)) return id;
  return model_->token_to_id(token);
}

size_t Tokenizer::vocab_size() const {
  size_t bound = 0;
  for (const AddedToken& t : added_.tokens())
    bound = std::max(bound, static_cast<size_t>(t.id) + 1);
  return std::max(bound, model_->id_bound());
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* added = added_.find_by_id(id);
  return added != nullptr && added->special;
}

// ---------------------------------------------------------------------------------------------

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_(skip_special_tokens) {}

void IncrementalDecoder::reset() {
  ids_.clear();
  prefix_offset_ = read_offset_ = 0;
  prefix_text_.clear();
  emitted_.clear();
  in_byte_run_ = false;
}

std::string IncrementalDecoder::step(int32_t id) {
  ids_.push_back(id);
  if (!(skip_special_ && tokenizer_->is_special(id))) {
    in_byte_run_ = tokenizer_->is_byte_run_token(id);
  }
  // Inside a byte-fallback run nothing can be emitted until the run ends: one invalid byte,
  // however late, turns the whole run into U+FFFDs (HF's ByteFallback). So the window is not
  // decoded at each of its ids either: a run costs one decode when it ends, whatever its length
  // (a limit on the run, as there was, emitted a long run's text before its end and broke the
  // stream's equality with decode: a valid run cut inside a character came out as U+FFFDs).
  if (in_byte_run_) return {};
  std::span<const int32_t> all(ids_);
  std::string text = tokenizer_->decode(all.subspan(prefix_offset_), skip_special_);
  // Emit only when the window grew past the already-emitted prefix and does not end in an
  // unfinished character (decoders render those as U+FFFD; a later id may complete it).
  if (text.size() <= prefix_text_.size() || text.compare(0, prefix_text_.size(), prefix_text_) != 0)
    return {};
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  size_t cut = ids_.size();  // the window's ids whose text is emitted now
  if (text.size() >= kReplacement.size() &&
      std::string_view(text).substr(text.size() - kReplacement.size()) == kReplacement) {
    // Held back: a later id may complete the character. A model emitting invalid bytes forever
    // (byte-level BPE) would grow the window without bound, so every kMaxPending ids the window
    // is cut at the newest id boundary (of the last few) whose text is final: a prefix of the
    // window's text that stops before its trailing U+FFFD. Only that U+FFFD can still change
    // (an unfinished character decodes as one, its maximal subpart); the invalid bytes before
    // it are final. (Taking the U+FFFD as final, as before, broke the equality with decode when
    // the next id completed the character: found by fuzz_tokenizer_encode.)
    constexpr size_t kMaxPending = 32, kCutSearch = 8;
    const size_t pending = ids_.size() - read_offset_;
    if (pending < kMaxPending || pending % kMaxPending != 0) return {};
    cut = 0;
    for (size_t j = ids_.size() - 1; j > read_offset_ && j + kCutSearch >= ids_.size(); --j) {
      std::string head =
          tokenizer_->decode(all.subspan(prefix_offset_, j - prefix_offset_), skip_special_);
      if (head.size() > prefix_text_.size() && head.size() + kReplacement.size() <= text.size() &&
          text.compare(0, head.size(), head) == 0) {
        cut = j;
        text = std::move(head);
        break;
      }
    }
    if (cut == 0) return {};
  }
  std::string fresh = text.substr(prefix_text_.size());
  // Slide the window: the ids just emitted become the new prefix.
  prefix_offset_ = read_offset_;
  read_offset_ = cut;
  prefix_text_ =
      tokenizer_->decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  emitted_ += fresh;
  return fresh;
}

std::string IncrementalDecoder::finish() {
  std::string full = tokenizer_->decode(ids_, skip_special_);
  std::string rest;
  if (full.compare(0, emitted_.size(), emitted_) == 0) {
    rest = full.substr(emitted_.size());
  } else {
    // Cannot happen with the HF decoders loom knows; fall back to the window's tail.
    std::string text =
        tokenizer_->decode(std::span<const int32_t>(ids_).subspan(prefix_offset_), skip_special_);
    if (text.size() > prefix_text_.size()) rest = text.substr(prefix_text_.size());
  }
  emitted_ += rest;
  prefix_offset_ = read_offset_ = ids_.size();
  prefix_text_.clear();
  return rest;
}

}  // namespace loom::tokenizer
