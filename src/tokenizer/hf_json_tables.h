// Internal: reads a tokenizer.json in one pass, keeping its two big tables, model.vocab (as an
// object of token -> id) and model.merges, out of the JSON document.
//
// A Qwen or Llama 3 tokenizer.json holds ~150k vocabulary entries and ~150k merges: as an
// nlohmann::json document they are ~600k allocations whose building and freeing took 0.8 s of
// the 1.35 s `loom run` spent before its first token on a tiny Qwen3 model. Read through
// nlohmann's SAX interface, the tables go straight into flat vectors; the rest of the file
// (normalizer, pre_tokenizer, added_tokens, ...) is built as the usual document, in which the
// two tables are left empty (an empty object, an empty array) so that every JsonCursor path
// still resolves.
//
// Only regular tables take this path: a vocabulary id that is not an integer in [0, INT32_MAX],
// a merge that is not "left right" or [left, right], a table seen twice, or a syntax error
// makes read_tokenizer_json return nullopt, and the caller parses the file the plain way so
// that its error names the same path and value it always has.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace loom::tokenizer {

struct ModelTables {
  // model.vocab when it was an object, in the order (and with the last-wins duplicates) that
  // the plain document's std::map gives: sorted by token bytes.
  std::optional<std::vector<std::pair<std::string, int32_t>>> vocab;
  // model.merges when it was an array, in file order.
  std::optional<std::vector<std::pair<std::string, std::string>>> merges;
};

struct TokenizerJson {
  nlohmann::json doc;  // model.vocab and model.merges left empty when taken out below
  ModelTables tables;
};

std::optional<TokenizerJson> read_tokenizer_json(std::string_view text);

}  // namespace loom::tokenizer
