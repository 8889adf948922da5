// Downloads from the Hugging Face Hub into the huggingface_hub cache layout, with libcurl.
//
// The protocol, as huggingface_hub uses it:
//   GET  {endpoint}/api/models/{repo}/revision/{revision}   -> {"sha": commit, "siblings": [...]}
//   HEAD {endpoint}/{repo}/resolve/{commit}/{file}          (redirects not followed)
//        -> X-Repo-Commit, ETag (git blob sha1) or X-Linked-Etag (LFS sha256), X-Linked-Size,
//           Location (LFS files: a CDN host)
//   GET  the Location (or the resolve URL), with Range: bytes=N- to resume
// Blobs are written to blobs/ETAG.incomplete, checked (sha256 when the ETag is one), renamed,
// and linked from snapshots/COMMIT/FILE; refs/REVISION records the commit last.
#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "core/progress.h"
#include "hub/hub.h"
#include "hub/strings.h"

namespace loom::hub {

namespace fs = std::filesystem;
using detail::env;
using detail::is_hex;
using detail::lower;

namespace {

constexpr size_t kMaxApiBody = 64u << 20;  // a revision listing is a few kB; cap a hostile one

// An ETag usable as a blob file name: hex only (huggingface_hub's are sha1 or sha256).
std::string etag_name(std::string tag) {
  if (tag.rfind("W/", 0) == 0) tag.erase(0, 2);
  tag.erase(std::remove(tag.begin(), tag.end(), '"'), tag.end());
  if (tag.size() > 128 || !is_hex(tag)) return {};
  return lower(tag);
}

// Percent-encodes everything but unreserved characters and, when keep_slash, '/'.
std::string url_encode(std::string_view s, bool keep_slash) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string host_of(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t end = url.find_first_of("/?#", start);
  return lower(url.substr(start, end == std::string::npos ? std::string::npos : end - start));
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
};

void ensure_curl() {
  static CurlGlobal global;
}

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, last value wins
  std::string body;
  std::string effective_url;
};

struct Transfer {
  Response* response;
  std::FILE* sink = nullptr;  // body to a file when set
  Progress* progress = nullptr;
  size_t body_limit = kMaxApiBody;
  long current = 0;  // the status of the response being received (redirects come first)
  bool overflow = false;
  int write_errno = 0;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect)
    t->response->headers.clear();
    const size_t sp = line.find(' ');
    t->current = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
  }
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string value = line.substr(colon + 1);
    const size_t b = value.find_first_not_of(" \t");
    const size_t e = value.find_last_not_of(" \t\r\n");
    value = b == std::string::npos ? std::string() : value.substr(b, e - b + 1);
    t->response->headers[lower(line.substr(0, colon))] = value;
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  // Only a success body goes to the file; an error page is kept as text.
  if (t->sink != nullptr && (t->current == 200 || t->current == 206)) {
    if (std::fwrite(data, 1, bytes, t->sink) != bytes) {
      t->write_errno = errno;
      return 0;
    }
    if (t->progress != nullptr) t->progress->add(static_cast<int64_t>(bytes));
    return bytes;
  }
  if (t->response->body.size() + bytes > t->body_limit) {
    t->overflow = true;
    return 0;
  }
  t->response->body.append(data, bytes);
  return bytes;
}

class Client {
 public:
  Client(std::string endpoint, std::string token)
      : endpoint_(std::move(endpoint)),
        endpoint_host_(host_of(endpoint_)),
        token_(std::move(token)) {
    ensure_curl();
  }

  // HEAD or GET. With a sink, a 200/206 body goes to the file; otherwise into the response.
  Response request(const std::string& url, bool head, bool follow, std::FILE* sink = nullptr,
                   int64_t resume_from = 0, Progress* progress = nullptr) const {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) fail(ErrorCode::kInternal, "libcurl: cannot create a handle");
    Response r;
    Transfer t{&r};
    t.progress = progress;
    CURL* h = curl.get();
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOBODY, head ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);  // stalled for 60 s: give up (resumable)
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "loom/0.1 (huggingface_hub-compatible)");
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> resolve_list(nullptr,
                                                                             curl_slist_free_all);
    if (const std::string resolve = env("LOOM_HUB_RESOLVE"); !resolve.empty()) {
      // Tests map a second host name to loopback (curl's --resolve HOST:PORT:ADDR).
      resolve_list.reset(curl_slist_append(nullptr, resolve.c_str()));
      curl_easy_setopt(h, CURLOPT_RESOLVE, resolve_list.get());
    }
    curl_slist* headers = nullptr;
    // The token goes to the Hub only, never to the storage host a redirect names.
    if (!token_.empty() && host_of(url) == endpoint_host_) {
      headers = curl_slist_append(headers, ("Authorization: Bearer " + token_).c_str());
    }
    if (resume_from > 0) {
      headers = curl_slist_append(headers, fmt::format("Range: bytes={}-", resume_from).c_str());
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    t.sink = sink;
    const CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    if (t.write_errno != 0) {
      fail(ErrorCode::kIoError, "writing the download failed: {}{}", std::strerror(t.write_errno),
           t.write_errno == ENOSPC ? " (the disk is full; free space and pull again: it resumes)"
                                   : "");
    }
    if (t.overflow)
      fail(ErrorCode::kCorruption, "{}: the answer is larger than {} bytes", url, kMaxApiBody);
    if (rc != CURLE_OK) {
      fail(ErrorCode::kIoError, "{}: {}{}", url, curl_easy_strerror(rc),
           sink != nullptr ? " (the next pull resumes where this one stopped)"
                           : " (HF_HUB_OFFLINE=1 uses only the cache)");
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    char* effective = nullptr;
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective);
    if (effective != nullptr) r.effective_url = effective;
    return r;
  }

  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string endpoint_, endpoint_host_, token_;
};

// The error for a status the Hub answered, in words a person can act on.
[[noreturn]] void status_error(long status, const HubName& name, const std::string& what,
                               const std::string& endpoint) {
  if (status == 401 || status == 403) {
    fail(ErrorCode::kInvalidArgument,
         "{}: {} answered {} for {}: the repository is gated or private. Accept its licence at "
         "{}/{} and set HF_TOKEN to a token with read access",
         name.text(), endpoint, status, what, endpoint, name.repo);
  }
  if (status == 404) {
    fail(ErrorCode::kNotFound,
         "{}: {} was not found on {} (check the name{}; a private repository needs HF_TOKEN)",
         name.text(), what, endpoint, name.revision != "main" ? " and the revision" : "");
  }
  fail(ErrorCode::kIoError, "{}: {} answered {} for {}", name.text(), endpoint, status, what);
}

std::string sha256_file(const fs::path& path) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

// The files of a folder repository loom reads.
std::vector<std::string> folder_files(const std::vector<std::string>& siblings,
                                      const HubName& name) {
  static const char* const kWanted[] = {
      "config.json",           "generation_config.json",   "tokenizer.json",
      "tokenizer_config.json", "special_tokens_map.json",  "chat_template.jinja",
      "chat_template.json",    "preprocessor_config.json", "model.safetensors.index.json"};
  std::vector<std::string> out;
  bool weights = false;
  for (const std::string& f : siblings) {
    const bool top = f.find('/') == std::string::npos;
    const bool wanted = std::find_if(std::begin(kWanted), std::end(kWanted),
                                     [&](const char* w) { return f == w; }) != std::end(kWanted);
    const bool shard = top && f.size() > 12 && f.compare(f.size() - 12, 12, ".safetensors") == 0;
    if (wanted || shard) out.push_back(f);
    weights = weights || shard;
  }
  if (!weights) {
    fail(ErrorCode::kUnsupported,
         "{}: the repository has no .safetensors weights at its top level (loom reads "
         "safetensors folders and GGUF files)",
         name.text());
  }
  return out;
}

// An exclusive lock on one blob across processes, where huggingface_hub keeps its own
// (CACHE/.locks/models--ORG--NAME/ETAG.lock), so two pulls of one model (two loom processes,
// or loom and huggingface_hub) download each blob once instead of writing one file together.
class BlobLock {
 public:
  explicit BlobLock(const fs::path& path) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd_ < 0)
      fail(ErrorCode::kIoError, "cannot open {}: {}", path.string(), std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        const int err = errno;
        ::close(fd_);
        fail(ErrorCode::kIoError, "cannot lock {}: {}", path.string(), std::strerror(err));
      }
    }
  }
  ~BlobLock() { ::close(fd_); }  // closing releases the lock
  BlobLock(const BlobLock&) = delete;
  BlobLock& operator=(const BlobLock&) = delete;

 private:
  int fd_ = -1;
};

struct FileJob {
  std::string path;  // in the repository
  std::string url;   // where the bytes are (the redirect target, or the resolve URL)
  std::string etag;  // blob name
  int64_t size = -1;
  bool cached = false;  // the blob is already there
};

}  // namespace

std::string pull(const HubName& name, const PullOptions& options) {
  std::string endpoint = options.endpoint;
  if (endpoint.empty()) endpoint = env("HF_ENDPOINT");
  if (endpoint.empty()) endpoint = "https://huggingface.co";
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  std::string token = options.token;
  if (token.empty()) token = env("HF_TOKEN");
  if (token.empty()) token = env("HUGGING_FACE_HUB_TOKEN");
  const std::string cache = options.cache.empty() ? cache_dir() : options.cache;
  const Client client(endpoint, token);

  // 1. The revision's commit and file list.
  const std::string api = endpoint + "/api/models/" + url_encode(name.repo, true) + "/revision/" +
                          url_encode(name.revision, false);
  const Response listing = client.request(api, /*head=*/false, /*follow=*/true);
  if (listing.status != 200) status_error(listing.status, name, "the repository", endpoint);
  const nlohmann::json info = nlohmann::json::parse(listing.body, nullptr, false);
  if (!info.is_object() || !info.contains("sha") || !info["sha"].is_string() ||
      !is_hex(info["sha"].get<std::string>(), 40) || !info.contains("siblings") ||
      !info["siblings"].is_array()) {
    fail(ErrorCode::kCorruption, "{}: {} gave no commit and file list for the revision",
         name.text(), api);
  }
  const std::string commit = lower(info["sha"].get<std::string>());
  std::vector<std::string> siblings;
  for (const nlohmann::json& s : info["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
    const std::string f = s["rfilename"];
    // The same checks a Hub name's file tag gets: no absolute paths, no "..".
    if (parse_hub_name("a/b:" + f) && f.find(':') == std::string::npos) siblings.push_back(f);
  }
  const std::vector<std::string> files = (name.tag.empty() && is_folder_repo(siblings))
                                             ? folder_files(siblings, name)
                                             : select_gguf(siblings, name);

  // 2. Where each file's bytes are, and which are already in the cache.
  const fs::path repo = repo_folder(cache, name.repo);
  const fs::path blobs = repo / "blobs", snapshot = repo / "snapshots" / commit;
  std::error_code ec;
  fs::create_directories(blobs, ec);
  if (ec) fail(ErrorCode::kIoError, "cannot create {}: {}", blobs.string(), ec.message());
  std::vector<FileJob> jobs;
  int64_t total = 0, resumed = 0;
  for (const std::string& f : files) {
    const std::string resolve = endpoint + "/" + url_encode(name.repo, true) + "/resolve/" +
                                commit + "/" + url_encode(f, true);
    Response head = client.request(resolve, /*head=*/true, /*follow=*/false);
    // A relative redirect stays on the Hub (a renamed repository): follow it for the headers.
    // An absolute one goes to the storage host, whose URL is where the bytes are.
    for (int hops = 0; hops < 5 && head.status >= 300 && head.status < 400; ++hops) {
      const auto loc = head.headers.find("location");
      if (loc == head.headers.end() || loc->second.empty() || loc->second.front() != '/') break;
      head = client.request(endpoint + loc->second, /*head=*/true, /*follow=*/false);
    }
    if (head.status >= 400) status_error(head.status, name, f, endpoint);
    auto header = [&](const char* k) {
      auto it = head.headers.find(k);
      return it == head.headers.end() ? std::string() : it->second;
    };
    FileJob job{f, resolve, etag_name(header("x-linked-etag")), -1, false};
    if (job.etag.empty()) job.etag = etag_name(header("etag"));
    if (job.etag.empty()) {
      fail(ErrorCode::kCorruption, "{}: {} gave {} no usable ETag", name.text(), endpoint, f);
    }
    std::string size = header("x-linked-size");
    if (size.empty() && head.status == 200) size = header("content-length");
    if (!size.empty()) job.size = std::strtoll(size.c_str(), nullptr, 10);
    if (head.status >= 300 && head.status < 400) {
      std::string location = header("location");
      if (location.empty())
        fail(ErrorCode::kCorruption, "{}: a redirect for {} without a Location", name.text(), f);
      if (location.front() == '/') location = endpoint + location;  // relative to the Hub
      job.url = location;
    }
    const fs::path blob = blobs / job.etag;
    if (fs::exists(blob, ec) &&
        (job.size < 0 || static_cast<int64_t>(fs::file_size(blob, ec)) == job.size)) {
      job.cached = true;
    } else {
      const fs::path part = blobs / (job.etag + ".incomplete");
      if (fs::exists(part, ec)) resumed += static_cast<int64_t>(fs::file_size(part, ec));
    }
    if (!job.cached && job.size > 0) total += job.size;
    jobs.push_back(job);
  }

  // 3. Fetch what is missing, several files at once.
  {
    Progress progress("pull " + name.text(), total, Progress::Unit::kBytes, options.quiet);
    progress.add(resumed);
    std::atomic<size_t> next{0};
    std::mutex error_mu;
    std::exception_ptr first_error;
    auto worker = [&] {
      for (size_t i = next++; i < jobs.size(); i = next++) {
        const FileJob& job = jobs[i];
        if (job.cached) continue;
        const fs::path blob = blobs / job.etag;
        try {
          const BlobLock lock(fs::path(cache) / ".locks" / fs::path(repo).filename() /
                              (job.etag + ".lock"));
          std::error_code e2;
          if (fs::exists(blob, e2)) {  // another process fetched it while this one waited
            if (job.size > 0) progress.add(job.size);
            continue;
          }
          const fs::path part = blobs / (job.etag + ".incomplete");
          int64_t have = fs::exists(part, e2) ? static_cast<int64_t>(fs::file_size(part, e2)) : 0;
          if (job.size >= 0 && have > job.size) {
            fs::remove(part, e2);
            have = 0;
          }
          if (job.size < 0 || have < job.size) {
            std::unique_ptr<std::FILE, decltype(&std::fclose)> out(std::fopen(part.c_str(), "ab"),
                                                                   std::fclose);
            if (!out)
              fail(ErrorCode::kIoError, "cannot write {}: {}", part.string(), std::strerror(errno));
            const Response got = client.request(job.url, false, true, out.get(), have, &progress);
            out.reset();
            if (got.status != 200 && got.status != 206 && !(got.status == 416 && have > 0)) {
              status_error(got.status, name, job.path, endpoint);  // (416: already complete)
            }
            if (got.status == 200 && have > 0) {
              // The server ignored the Range: the file was sent from the start. Keep only that.
              std::ifstream in(part, std::ios::binary);
              in.seekg(have);
              const fs::path fresh = blobs / (job.etag + ".fresh");
              std::ofstream(fresh, std::ios::binary) << in.rdbuf();
              fs::rename(fresh, part);
            }
          }
          const auto size = static_cast<int64_t>(fs::file_size(part, e2));
          if (e2) fail(ErrorCode::kIoError, "{}: {}: {}", name.text(), part.string(), e2.message());
          if (job.size >= 0 && size != job.size) {
            fail(ErrorCode::kIoError, "{}: {} stopped at {} of {} bytes (pull again: it resumes)",
                 name.text(), job.path, size, job.size);
          }
          if (job.etag.size() == 64) {
            const std::string sum = sha256_file(part);
            if (sum != job.etag) {
              fs::remove(part, e2);
              fail(ErrorCode::kCorruption,
                   "{}: {} has sha256 {} but the Hub's ETag says {}; the download was removed, "
                   "pull again",
                   name.text(), job.path, sum, job.etag);
            }
          }
          fs::rename(part, blob);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (!first_error) first_error = std::current_exception();
          next = jobs.size();
        }
      }
    };
    std::vector<std::thread> threads;
    const int n = std::clamp(options.parallel, 1, 16);
    for (int t = 0; t < n; ++t) threads.emplace_back(worker);
    for (std::thread& t : threads) t.join();
    if (first_error) std::rethrow_exception(first_error);
  }

  // 4. The snapshot's links, then the ref: a ref names only complete snapshots.
  for (const FileJob& job : jobs) {
    const fs::path link = snapshot / job.path;
    fs::create_directories(link.parent_path(), ec);
    const fs::path target = fs::relative(blobs / job.etag, link.parent_path(), ec);
    // Made aside and renamed into place: another pull of the same model may be linking too.
    const fs::path tmp = link.string() + fmt::format(".{}.tmp", ::getpid());
    fs::remove(tmp, ec);
    fs::create_symlink(target, tmp, ec);
    if (!ec) fs::rename(tmp, link, ec);
    if (ec) fail(ErrorCode::kIoError, "cannot link {}: {}", link.string(), ec.message());
  }
  if (name.revision != commit) {
    const fs::path ref = repo / "refs" / name.revision;
    fs::create_directories(ref.parent_path(), ec);
    const fs::path tmp = ref.string() + fmt::format(".{}.tmp", ::getpid());
    std::ofstream(tmp, std::ios::binary | std::ios::trunc) << commit;
    fs::rename(tmp, ref, ec);
    if (ec) fail(ErrorCode::kIoError, "cannot write {}: {}", ref.string(), ec.message());
  }
  HubName pinned = name;
  pinned.revision = commit;
  std::optional<std::string> path = resolve_cached(pinned, cache);
  if (!path)
    fail(ErrorCode::kInternal, "{}: pulled, but the cache does not resolve it", name.text());
  return *path;
}

}  // namespace loom::hub
