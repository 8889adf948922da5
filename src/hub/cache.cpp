// Hub names and the huggingface_hub cache layout (no network here).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "hub/hub.h"
#include "hub/strings.h"

namespace loom::hub {

namespace fs = std::filesystem;
using detail::env;
using detail::is_hex;
using detail::lower;

namespace {

// One segment of a repository id as the Hub allows it: letters, digits, '-', '_', '.', not
// starting or ending with '-' or '.', no "--" or "..", at most 96 characters.
bool valid_segment(std::string_view s) {
  if (s.empty() || s.size() > 96) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  if (s.front() == '-' || s.front() == '.' || s.back() == '-' || s.back() == '.') return false;
  return s.find("--") == std::string_view::npos && s.find("..") == std::string_view::npos;
}

bool valid_revision(std::string_view s) {
  if (s.empty() || s.size() > 255 || s.front() == '/' || s.back() == '/') return false;
  if (s.find("..") != std::string_view::npos || s.find("//") != std::string_view::npos) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
}

// A file path inside a repository: relative, no "..", no empty segment, printable ASCII.
bool valid_repo_path(std::string_view s) {
  if (s.empty() || s.size() > 1024 || s.front() == '/') return false;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find('/', start), s.size());
    const std::string_view seg = s.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = end + 1;
  }
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f && c != '\\'; });
}

std::string base_name(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// "-00002-of-00003.gguf" -> {2, 3}; {0, 0} when the name is not a split part.
std::pair<int, int> split_part(std::string_view file) {
  const size_t of = file.rfind("-of-");
  if (of == std::string_view::npos || of < 6 || !file.ends_with(".gguf")) return {0, 0};
  const std::string_view part = file.substr(of - 5, 5);
  const std::string_view total = file.substr(of + 4, file.size() - 5 - (of + 4));
  if (file[of - 6] != '-' || total.size() != 5) return {0, 0};
  auto digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(part) || !digits(total)) return {0, 0};
  return {std::stoi(std::string(part)), std::stoi(std::string(total))};
}

// The name without its split suffix: the key that groups the parts of one model.
std::string split_stem(const std::string& file) {
  const auto [part, total] = split_part(file);
  return part == 0 ? file
                   : file.substr(0, file.size() - std::string_view("-00001-of-00003.gguf").size());
}

// Whether the file name carries QUANT as a token of its own.
bool names_quant(const std::string& file, const std::string& quant) {
  const std::string name = lower(base_name(file));
  const std::string q = lower(quant);
  for (size_t at = name.find(q); at != std::string::npos; at = name.find(q, at + 1)) {
    const bool left = at == 0 || name[at - 1] == '-' || name[at - 1] == '.' || name[at - 1] == '_';
    const size_t after = at + q.size();
    const bool right = after < name.size() && (name[after] == '-' || name[after] == '.');
    if (left && right) return true;
  }
  return false;
}

bool is_projector(const std::string& file) {
  return lower(base_name(file)).find("mmproj") != std::string::npos;
}

std::string read_first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

std::vector<std::string> list_files(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec))
      out.push_back(it->path().lexically_relative(root).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string HubName::text() const {
  std::string s = repo;
  if (revision != "main") s += "@" + revision;
  if (!tag.empty()) s += ":" + tag;
  return s;
}

std::optional<HubName> parse_hub_name(std::string_view name) {
  for (std::string_view prefix :
       {"hf://", "hf.co/", "huggingface.co/", "https://huggingface.co/"}) {
    if (name.substr(0, prefix.size()) == prefix) {
      name.remove_prefix(prefix.size());
      break;
    }
  }
  HubName out;
  out.revision = "main";
  const size_t colon = name.find(':');
  if (colon != std::string_view::npos) {
    out.tag = std::string(name.substr(colon + 1));
    name = name.substr(0, colon);
    if (!valid_repo_path(out.tag)) return std::nullopt;
  }
  const size_t at = name.find('@');
  if (at != std::string_view::npos) {
    out.revision = std::string(name.substr(at + 1));
    name = name.substr(0, at);
    if (!valid_revision(out.revision)) return std::nullopt;
  }
  const size_t slash = name.find('/');
  if (slash == std::string_view::npos) {
    if (!valid_segment(name)) return std::nullopt;
  } else if (!valid_segment(name.substr(0, slash)) || !valid_segment(name.substr(slash + 1))) {
    return std::nullopt;
  }
  out.repo = std::string(name);
  return out;
}

std::string cache_dir() {
  if (std::string v = env("HF_HUB_CACHE"); !v.empty()) return v;
  if (std::string v = env("HUGGINGFACE_HUB_CACHE"); !v.empty()) return v;
  if (std::string v = env("HF_HOME"); !v.empty()) return (fs::path(v) / "hub").string();
  if (std::string v = env("XDG_CACHE_HOME"); !v.empty()) {
    return (fs::path(v) / "huggingface" / "hub").string();
  }
  const std::string home = env("HOME");
  return (fs::path(home.empty() ? "/root" : home) / ".cache" / "huggingface" / "hub").string();
}

std::string repo_folder(const std::string& cache, const std::string& repo) {
  std::string folder = "models--" + repo;
  for (size_t at = folder.find('/'); at != std::string::npos; at = folder.find('/', at)) {
    folder.replace(at, 1, "--");
  }
  return (fs::path(cache) / folder).string();
}

bool is_folder_repo(const std::vector<std::string>& files) {
  return std::find(files.begin(), files.end(), "config.json") != files.end();
}

std::vector<std::string> select_gguf(const std::vector<std::string>& files, const HubName& name) {
  std::vector<std::string> ggufs;
  for (const std::string& f : files) {
    if (lower(f).ends_with(".gguf")) ggufs.push_back(f);
  }
  // Group split parts under their first part.
  std::map<std::string, std::vector<std::string>> models;  // stem -> parts in order
  for (const std::string& f : ggufs) models[split_stem(f)].push_back(f);
  for (auto& [stem, parts] : models) {
    std::sort(parts.begin(), parts.end(), [](const std::string& a, const std::string& b) {
      return split_part(a).first < split_part(b).first;
    });
  }
  auto choices = [&](auto keep) {
    std::vector<std::string> firsts;
    for (const auto& [stem, parts] : models) {
      if (keep(parts.front())) firsts.push_back(parts.front());
    }
    return firsts;
  };
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& f : v) s += (s.empty() ? "" : ", ") + f;
    return s;
  };
  std::vector<std::string> picked;
  if (lower(name.tag).ends_with(".gguf")) {
    for (const std::string& f : ggufs) {
      if (f == name.tag || base_name(f) == name.tag) picked.push_back(f);
    }
    if (picked.size() > 1) picked.resize(1);
    if (!picked.empty()) {
      const auto& parts = models[split_stem(picked.front())];
      if (split_part(picked.front()).first == 1) return parts;
      return picked;
    }
    fail(ErrorCode::kNotFound, "{}: no file {} in the repository (its .gguf files: {})",
         name.text(), name.tag, ggufs.empty() ? "none" : list(choices([](auto&) { return true; })));
  }
  const std::vector<std::string> models_only =
      choices([](const std::string& f) { return !is_projector(f); });
  if (name.tag.empty()) {
    if (models_only.size() == 1) {
      picked = models_only;
    } else {
      picked = choices(
          [&](const std::string& f) { return !is_projector(f) && names_quant(f, "Q4_K_M"); });
    }
    if (picked.size() != 1) {
      fail(ErrorCode::kInvalidArgument,
           "{}: the repository has {} models; name one with a tag, e.g. {}:Q4_K_M ({})",
           name.text(), models_only.size(), name.repo, list(models_only));
    }
  } else {
    const bool want_projector = is_projector(name.tag);
    picked = choices([&](const std::string& f) {
      return is_projector(f) == want_projector && names_quant(f, name.tag);
    });
    if (picked.empty()) {
      fail(ErrorCode::kNotFound, "{}: no .gguf file for {} in the repository (its models: {})",
           name.text(), name.tag, models_only.empty() ? "none" : list(models_only));
    }
    if (picked.size() > 1) {
      fail(ErrorCode::kInvalidArgument, "{}: {} names several models ({}); name the file instead",
           name.text(), name.tag, list(picked));
    }
  }
  return models[split_stem(picked.front())];
}

std::optional<std::string> resolve_cached(const HubName& name, const std::string& cache) {
  const fs::path repo = repo_folder(cache, name.repo);
  std::string commit = name.revision;
  if (!is_hex(commit, 40)) {
    commit = read_first_line(repo / "refs" / name.revision);
    if (!is_hex(commit, 40)) return std::nullopt;
  }
  const fs::path snapshot = repo / "snapshots" / commit;
  std::error_code ec;
  if (!fs::is_directory(snapshot, ec)) return std::nullopt;
  const std::vector<std::string> files = list_files(snapshot);
  if (is_folder_repo(files) && name.tag.empty()) return snapshot.string();
  std::vector<std::string> parts;
  try {
    parts = select_gguf(files, name);
  } catch (const Error&) {
    if (files.empty() || !std::any_of(files.begin(), files.end(), [](const std::string& f) {
          return lower(f).ends_with(".gguf");
        })) {
      return std::nullopt;  // nothing of it downloaded yet
    }
    throw;
  }
  const int want_parts = split_part(parts.front()).second;
  if (want_parts > 0 && static_cast<int>(parts.size()) != want_parts) return std::nullopt;
  for (const std::string& p : parts) {
    if (!fs::exists(snapshot / p, ec)) return std::nullopt;  // a part still missing
  }
  return (snapshot / parts.front()).string();
}

std::string resolve_model_argument(const std::string& arg) {
  std::error_code ec;
  if (arg.empty() || fs::exists(arg, ec)) return arg;
  const std::optional<HubName> name = parse_hub_name(arg);
  if (!name) return arg;
  const std::string cache = cache_dir();
  if (std::optional<std::string> path = resolve_cached(*name, cache)) return *path;
  const char* offline = std::getenv("HF_HUB_OFFLINE");
  if (offline != nullptr && *offline != '\0' && std::string_view(offline) != "0") {
    fail(ErrorCode::kNotFound,
         "{}: no such file or folder, and not in the Hugging Face cache ({}); HF_HUB_OFFLINE is "
         "set, so it is not downloaded",
         arg, repo_folder(cache, name->repo));
  }
  PullOptions options;
  options.cache = cache;
  try {
    return pull(*name, options);
  } catch (const Error& e) {
    // It may have been meant as a local path: say both.
    throw Error(
        ErrorCode::kNotFound,
        fmt::format("{}: no such file or folder, and as a Hugging Face model: {}", arg, e.what()));
  }
}

}  // namespace loom::hub
