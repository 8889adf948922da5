// Shared by hf_json_tables_test and fuzz_tokenizer_json: whether read_tokenizer_json describes
// exactly the document json::parse gives for the same text.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "tokenizer/hf_json_tables.h"

namespace loom::tokenizer::test {

// "" when read_tokenizer_json declines `text` or agrees with the plain parse; else what differs.
inline std::string tables_mismatch(std::string_view text) {
  auto fast = read_tokenizer_json(text);
  if (!fast) return "";
  nlohmann::json plain;
  try {
    plain = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return std::string("the reader took a text the plain parse refuses: ") + e.what();
  }
  try {
    if (fast->tables.vocab) {
      nlohmann::json& vocab = plain.at("model").at("vocab");
      std::vector<std::pair<std::string, int32_t>> want;
      for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        want.emplace_back(it.key(), it->get<int32_t>());
      }
      if (want != *fast->tables.vocab) return "model.vocab differs";
      vocab = nlohmann::json::object();
    }
    if (fast->tables.merges) {
      nlohmann::json& merges = plain.at("model").at("merges");
      std::vector<std::pair<std::string, std::string>> want;
      for (const nlohmann::json& m : merges) {
        if (m.is_string()) {
          const std::string s = m.get<std::string>();
          const size_t space = s.find(' ');
          want.emplace_back(s.substr(0, space), s.substr(space + 1));
        } else {
          want.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
        }
      }
      if (want != *fast->tables.merges) return "model.merges differs";
      merges = nlohmann::json::array();
    }
  } catch (const nlohmann::json::exception& e) {
    return std::string("the reader took tables the plain document does not hold: ") + e.what();
  }
  if (plain != fast->doc) return "the rest of the document differs";
  return "";
}

}  // namespace loom::tokenizer::test
