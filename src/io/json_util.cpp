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
  } catch (const nlohmann::json::exception& e) {
    // Found by fuzzing: a number too large for any JSON number type (e.g. 88e888888) throws
    // out_of_range, not parse_error, and has no byte position.
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    fail(ErrorCode::kCorruption, "{}: not valid JSON: {}", file, what);
  }
}

nlohmann::json read_json_file(const std::string& path) {
  return parse_json_or_fail(read_text_file(path), path, 0);
}

}  // namespace loom
