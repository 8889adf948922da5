#include "tokenizer/decoders.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {

namespace {
// Builds the result in one pass (linear, where repeated in-place replace() is quadratic; it
// also avoids GCC 12's false -Wrestrict on std::string::replace, GCC bug 105651).
void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  size_t hit = s.find(from);
  if (hit == std::string::npos) return;
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (; hit != std::string::npos; hit = s.find(from, pos)) {
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  s.swap(out);
}
}  // namespace

void ByteLevelDecoder::decode_chain(std::vector<std::string>& tokens) const {
  std::string bytes;
  for (const std::string& token : tokens) {
    size_t mark = bytes.size();
    size_t pos = 0;
    bool all_mapped = true;
    while (pos < token.size()) {
      auto b = unicode_to_byte(next_code_point(token, pos));
      if (!b) {
        all_mapped = false;
        break;
      }
      bytes += static_cast<char>(*b);
    }
    if (!all_mapped) {
      bytes.resize(mark);
      bytes += token;
    }
  }
  tokens.assign(1, sanitize_utf8(bytes));
}

void ByteLevelDecoder::decode_chain_raw(std::vector<std::string>& tokens) const {
  std::string bytes;
  for (const std::string& token : tokens) {
    size_t pos = 0;
    std::string mapped;
    bool all_mapped = true;
    while (pos < token.size()) {
      auto b = unicode_to_byte(next_code_point(token, pos));
      if (!b) {
        all_mapped = false;
        break;
      }
      mapped += static_cast<char>(*b);
    }
    bytes += all_mapped ? mapped : token;
  }
  tokens.assign(1, std::move(bytes));
}

void MetaspaceDecoder::decode_chain_raw(std::vector<std::string>& tokens) const {
  for (std::string& token : tokens) replace_all(token, replacement_, " ");
}

void ByteFallbackDecoder::decode_chain_raw(std::vector<std::string>& tokens) const {
  for (std::string& token : tokens) {
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>' &&
        hex(token[3]) >= 0 && hex(token[4]) >= 0) {
      token = std::string(1, static_cast<char>(hex(token[3]) * 16 + hex(token[4])));
    }
  }
}

void WordPieceDecoder::decode_chain_raw(std::vector<std::string>& tokens) const {
  for (std::string& token : tokens) {
    if (token.compare(0, prefix_.size(), prefix_) == 0) {
      token.erase(0, prefix_.size());
    } else {
      token.insert(0, 1, ' ');
    }
  }
}

void MetaspaceDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string& token = tokens[i];
    if (i == 0 && scheme_ != PrependScheme::kNever) {
      // Every replacement in the first token is dropped (HF behaviour, not only a leading one).
      replace_all(token, replacement_, "");
    } else {
      replace_all(token, replacement_, " ");
    }
  }
}

void ByteFallbackDecoder::decode_chain(std::vector<std::string>& tokens) const {
  std::vector<std::string> out;
  out.reserve(tokens.size());
  std::string pending;  // raw bytes of consecutive <0xXX> tokens
  auto flush = [&] {
    if (pending.empty()) return;
    if (is_valid_utf8(pending)) {
      out.push_back(pending);
    } else {
      for (size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
    }
    pending.clear();
  };
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::string& token : tokens) {
    if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>' &&
        hex(token[3]) >= 0 && hex(token[4]) >= 0) {
      pending += static_cast<char>(hex(token[3]) * 16 + hex(token[4]));
      continue;
    }
    flush();
    out.push_back(std::move(token));
  }
  flush();
  tokens = std::move(out);
}

void FuseDecoder::decode_chain(std::vector<std::string>& tokens) const {
  std::string joined;
  for (const std::string& t : tokens) joined += t;
  tokens.assign(1, std::move(joined));
}

void StripDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (std::string& token : tokens) {
    std::vector<size_t> bounds;  // character start offsets, plus the end
    for (size_t pos = 0; pos < token.size();) {
      bounds.push_back(pos);
      pos += utf8_length(static_cast<unsigned char>(token[pos]));
    }
    size_t count = bounds.size();
    bounds.push_back(token.size());
    auto char_at = [&](size_t i) {
      size_t pos = bounds[i];
      return next_code_point(token, pos);
    };
    size_t start_cut = 0;
    for (size_t i = 0; i < std::min(start_, count) && char_at(i) == content_; ++i)
      start_cut = i + 1;
    size_t stop_cut = count;
    for (size_t i = 0; i < stop_ && i < count; ++i) {
      size_t index = count - i - 1;
      if (char_at(index) != content_) break;
      stop_cut = index;
    }
    if (stop_cut < start_cut) stop_cut = start_cut;
    token = token.substr(bounds[start_cut], bounds[stop_cut] - bounds[start_cut]);
  }
}

void ReplaceDecoder::decode_chain(std::vector<std::string>& tokens) const {
  std::vector<Match> matches;
  for (std::string& token : tokens) {
    matches.clear();
    pattern_.find_all(token, matches);
    if (matches.empty()) continue;
    std::string out;
    size_t prev = 0;
    for (const Match& m : matches) {
      out.append(token, prev, m.begin - prev);
      out += content_;
      prev = m.end;
    }
    out.append(token, prev, std::string::npos);
    token = std::move(out);
  }
}

void WordPieceDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string& token = tokens[i];
    if (i != 0) {
      if (token.compare(0, prefix_.size(), prefix_) == 0) {
        token.erase(0, prefix_.size());
      } else {
        token.insert(0, 1, ' ');
      }
    }
    if (cleanup_) {
      // The fixed list of the original BERT detokenizer (HF decoders/wordpiece.rs cleanup).
      replace_all(token, " .", ".");
      replace_all(token, " ?", "?");
      replace_all(token, " !", "!");
      replace_all(token, " ,", ",");
      replace_all(token, " ' ", "'");
      replace_all(token, " n't", "n't");
      replace_all(token, " 'm", "'m");
      replace_all(token, " do not", " don't");
      replace_all(token, " 's", "'s");
      replace_all(token, " 've", "'ve");
      replace_all(token, " 're", "'re");
    }
  }
}

void BpeDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
  }
}

double ReplaceDecoder::max_growth() const {
  return replace_growth(pattern_, content_);
}

double SequenceDecoder::max_growth() const {
  double growth = 1;
  for (const auto& child : children_) growth *= child->max_growth();
  return growth;
}

void SequenceDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (const auto& child : children_) child->decode_chain(tokens);
}

}  // namespace loom::tokenizer
