#include "tokenizer/normalizers.h"

#include <algorithm>

namespace loom::tokenizer {

void UnicodeNormalizer::normalize(std::string& text) const {
  text = normalize_unicode(text, form_);
}

void LowercaseNormalizer::normalize(std::string& text) const {
  text = to_lower(text);
}

void ReplaceNormalizer::normalize(std::string& text) const {
  std::vector<Match> matches;
  pattern_.find_all(text, matches);
  if (matches.empty()) return;
  std::string out;
  out.reserve(text.size());
  size_t prev = 0;
  for (const Match& m : matches) {
    out.append(text, prev, m.begin - prev);
    out += content_;
    prev = m.end;
  }
  out.append(text, prev, std::string::npos);
  text = std::move(out);
}

double ReplaceNormalizer::max_growth() const {
  return replace_growth(pattern_, content_);
}

double UnicodeNormalizer::max_growth() const {
  return form_ == NormalForm::kNfkc || form_ == NormalForm::kNfkd ? 11 : 3;
}

double BertNormalizer::max_growth() const {
  // CJK ideographs gain two spaces (3 bytes -> 5); otherwise NFD for strip_accents (3x) and
  // lowercasing (2x) bound it.
  return std::max(5.0 / 3.0, (strip_accents_ ? 3.0 : 1.0) * (lowercase_ ? 2.0 : 1.0));
}

double SequenceNormalizer::max_growth() const {
  double growth = 1;
  for (const auto& child : children_) growth *= child->max_growth();
  return growth;
}

void PrependNormalizer::normalize(std::string& text) const {
  if (!text.empty()) text.insert(0, prefix_);
}

void StripNormalizer::normalize(std::string& text) const {
  size_t begin = 0, end = text.size();
  if (left_) {
    while (begin < text.size()) {
      size_t next = begin;
      if (!is_whitespace(next_code_point(text, next))) break;
      begin = next;
    }
  }
  if (right_) {
    // Scan forward, remembering where the trailing whitespace run starts.
    size_t pos = begin, run = std::string::npos;
    while (pos < text.size()) {
      size_t at = pos;
      if (is_whitespace(next_code_point(text, pos))) {
        if (run == std::string::npos) run = at;
      } else {
        run = std::string::npos;
      }
    }
    if (run != std::string::npos) end = run;
  }
  if (end < begin) end = begin;
  text = text.substr(begin, end - begin);
}

void StripAccentsNormalizer::normalize(std::string& text) const {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    char32_t c = next_code_point(text, pos);
    if (!is_combining_mark(c)) append_utf8(out, c);
  }
  text = std::move(out);
}

namespace {
// The CJK Unified Ideograph blocks that BERT's original tokenizer spaces out
// (google-research/bert tokenization.py, _is_chinese_char).
bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
}  // namespace

void BertNormalizer::normalize(std::string& text) const {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    char32_t c = next_code_point(text, pos);
    if (clean_text_) {
      bool control = c != '\t' && c != '\n' && c != '\r' && is_other(c);
      if (c == 0 || c == kReplacementChar || control) continue;
      if (is_whitespace(c)) c = ' ';
    }
    if (handle_chinese_chars_ && is_cjk_ideograph(c)) {
      out += ' ';
      append_utf8(out, c);
      out += ' ';
    } else {
      append_utf8(out, c);
    }
  }
  if (strip_accents_) {
    std::string decomposed = normalize_unicode(out, NormalForm::kNfd);
    out.clear();
    pos = 0;
    while (pos < decomposed.size()) {
      char32_t c = next_code_point(decomposed, pos);
      if (!is_mark_nonspacing(c)) append_utf8(out, c);
    }
  }
  if (lowercase_) out = to_lower(out);
  text = std::move(out);
}

void SequenceNormalizer::normalize(std::string& text) const {
  for (const auto& child : children_) child->normalize(text);
}

}  // namespace loom::tokenizer
