// Small helpers for reading JSON files (config.json, safetensors headers, index files) with
// errors that name the file and the byte where parsing failed.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace loom {

// Parses `text`; on a syntax error throws kCorruption "<file>: byte <base+pos>: not valid
// JSON: ...". `base_offset` is where `text` starts inside its file.
nlohmann::json parse_json_or_fail(std::string_view text, const std::string& file,
                                  uint64_t base_offset);

// Reads and parses a JSON file.
nlohmann::json read_json_file(const std::string& path);

}  // namespace loom
