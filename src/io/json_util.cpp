#include "io/json_util.h"

#include "core/error.h"
#include "core/mapped_file.h"

namespace loom {

nlohmann::json parse_json_or_fail(std::string_view text, const std::string& file,
                                  uint64_t base_offset) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based: the position of the last character read.
    uint64_t at = base_offset + (e.byte > 0 ? e.byte - 1 : 0);
    std::string what = e.what();
    if (auto p = what.find("syntax error"); p != std::string::npos) what = what.substr(p);
    fail(ErrorCode::kCorruption, "{}: byte {}: not valid JSON: {}", file, at, what);
  }
}

nlohmann::json read_json_file(const std::string& path) {
  return parse_json_or_fail(read_text_file(path), path, 0);
}

}  // namespace loom
