// Shared by the grammar fuzz targets: a small vocabulary (every byte plus a few multi-byte
// tokens and an EOS) and how a compiled grammar is exercised (masks filled while the text after
// the grammar is fed byte by byte).
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/matcher.h"

namespace loom::fuzz {

inline std::shared_ptr<const grammar::TokenVocab> byte_vocab(
    std::initializer_list<const char*> extra) {
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.emplace_back(1, static_cast<char>(b));
  for (const char* t : extra) bytes.emplace_back(t);
  bytes.emplace_back("<eos>");
  std::vector<bool> text(bytes.size(), true);
  text.back() = false;
  return std::make_shared<const grammar::TokenVocab>(
      bytes, text, std::vector<int32_t>{static_cast<int32_t>(bytes.size() - 1)});
}

inline void drive(std::shared_ptr<grammar::Grammar> g,
                  std::shared_ptr<const grammar::TokenVocab> vocab, std::string_view text) {
  grammar::Matcher m(std::make_shared<grammar::CompiledGrammar>(std::move(g)), std::move(vocab));
  grammar::IdSet mask;
  m.fill_mask(mask);
  for (size_t i = 0; i < text.size() && i < 256; ++i) {
    if (!m.consume_bytes(text.substr(i, 1))) break;
    if (i % 8 == 0) m.fill_mask(mask);
  }
  (void)m.can_stop();
}

}  // namespace loom::fuzz
