// The chat page's static files (src/server/web), built into the binary by
// cmake/embed_files.cmake: nothing is read from disk or fetched at run time.
#pragma once

#include <string_view>

namespace loom::server {

struct WebAsset {
  std::string_view path;  // "/index.html", "/chat.js", ...
  std::string_view body;
  const char* content_type;
};

// The asset served at PATH ("/" is /index.html); null when there is none.
const WebAsset* find_web_asset(std::string_view path);

}  // namespace loom::server
