// Models named the way the Hugging Face Hub names them: "org/name", "org/name:Q4_K_M",
// "org/name:file.gguf", with an optional "@revision" before the tag.
//
// The cache is the one huggingface_hub writes, so models downloaded by other tools are found
// without copying: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
// else ~/.cache/huggingface/hub; in it models--ORG--NAME/{refs/REVISION, blobs/ETAG,
// snapshots/COMMIT/FILE -> ../../blobs/ETAG}.
//
// resolve_cached() reads the cache only (no network); pull() (pull.cpp, libcurl) downloads
// what is missing from $HF_ENDPOINT (default https://huggingface.co) into the same layout.
// Thread-safety: free functions without shared state; pull() runs its own download threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loom::hub {

struct HubName {
  std::string repo;          // "org/name" (or a legacy single-segment "name")
  std::string revision;      // branch, tag or 40-hex commit; "main" when not given
  std::string tag;           // "" | a quantization ("Q4_K_M") | a file in the repo ("x/y.gguf")
  std::string text() const;  // as a person writes it
};

// Parses NAME as a Hub model name; nullopt when it cannot be one (an absolute path, "./x",
// characters the Hub does not allow in repository ids, ...).
std::optional<HubName> parse_hub_name(std::string_view name);

// The hub cache folder from the environment (may not exist).
std::string cache_dir();

// The folder of REPO in CACHE ("models--org--name").
std::string repo_folder(const std::string& cache, const std::string& repo);

// What a GGUF tag selects among a repository's files (paths relative to its root): the file
// named by a ".gguf" tag; else the .gguf files whose name carries the quantization (case-
// insensitive, delimited: "Q4_K" does not match "Q4_K_M"), the first part of a split model
// ("-00001-of-00003") standing for all of them; vision projectors (mmproj) only when asked.
// No tag: the only model .gguf, else Q4_K_M when present. Returns the chosen file and its
// split parts in order; throws loom::Error naming the choices when there is none or several.
std::vector<std::string> select_gguf(const std::vector<std::string>& files, const HubName& name);

// True when the repository (these files) is a Hugging Face model folder rather than GGUF files.
bool is_folder_repo(const std::vector<std::string>& files);

// The local path for NAME in CACHE: the snapshot folder (HF folders) or the selected .gguf
// file; nullopt when the revision or the files are not there.
std::optional<std::string> resolve_cached(const HubName& name, const std::string& cache);

// What a model argument means: an existing local path as is; else a Hub name found in the
// cache; else, unless HF_HUB_OFFLINE is set, pulled into it. A name that is neither is
// returned unchanged (the loader then says the path does not exist).
std::string resolve_model_argument(const std::string& arg);

// ----------------------------------------------------------------------------- downloads
struct PullOptions {
  std::string endpoint;  // "" = $HF_ENDPOINT or https://huggingface.co
  std::string token;     // "" = $HF_TOKEN (or $HUGGING_FACE_HUB_TOKEN)
  std::string cache;     // "" = cache_dir()
  int parallel = 4;      // files downloaded at once
  bool quiet = false;    // no progress output
};

// Downloads what NAME needs that the cache lacks (a folder repo's config, tokenizer, chat
// template and safetensors shards; a GGUF repo's selected file and its parts), resuming
// partial downloads, checking sha256 against the LFS ETag, and returns the local path as
// resolve_cached() would. Errors say what to do (401/403: accept the licence and set
// HF_TOKEN; 404: which name; disk full; offline).
std::string pull(const HubName& name, const PullOptions& options);

}  // namespace loom::hub
