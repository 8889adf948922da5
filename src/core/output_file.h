// Writing an output file (GGUF, safetensors) so that a reader never sees half of it: the bytes go
// to PATH.tmp and are renamed over PATH when complete. Except when PATH exists and is not a
// regular file (/dev/null, /dev/stdout, a FIFO): that is written directly, since renaming over
// it would replace a device node with a file (as root, /dev/null itself).
#pragma once

#include <string>

namespace loom {

// Where to write `path`'s bytes.
std::string output_staging_path(const std::string& path);
// Puts the staging file in place (nothing when it is `path` itself); kIoError naming `path`.
void commit_output_file(const std::string& staging, const std::string& path);
// Removes a staging file after a failed write (nothing when it is `path` itself).
void discard_output_file(const std::string& staging, const std::string& path);

}  // namespace loom
