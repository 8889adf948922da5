#include "core/output_file.h"

#include <filesystem>

#include "core/error.h"

namespace loom {

std::string output_staging_path(const std::string& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (!ec && std::filesystem::exists(st) && !std::filesystem::is_regular_file(st) &&
      !std::filesystem::is_directory(st)) {
    return path;
  }
  return path + ".tmp";
}

void commit_output_file(const std::string& staging, const std::string& path) {
  if (staging == path) return;
  std::error_code ec;
  std::filesystem::rename(staging, path, ec);
  if (ec) {
    std::filesystem::remove(staging, ec);
    fail(ErrorCode::kIoError, "{}: cannot rename {} into place: {}", path, staging, ec.message());
  }
}

void discard_output_file(const std::string& staging, const std::string& path) {
  if (staging == path) return;
  std::error_code ignored;
  std::filesystem::remove(staging, ignored);
}

}  // namespace loom
