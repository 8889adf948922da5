#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/progress.h"
#include "core/system_memory.h"

namespace loom {

namespace {

[[noreturn]] void fail_errno(const std::string& path, const char* what, int err) {
  fail(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIoError, "{}: {}: {}", path, what,
       std::strerror(err));
}

// Files this large are model weights, streamed end to end at every decode step. Read through
// 4 KiB page-cache pages they come at a fraction of memory bandwidth (measured on the 2-core
// CI VM: 2-3 GB/s through the file mapping, 13-21 GB/s from 4 KiB anonymous pages, 30-44 GB/s
// from anonymous transparent huge pages: the TLB misses dominate), so they are read once into
// anonymous memory that asks for huge pages — llama.cpp's --no-mmap, plus MADV_HUGEPAGE —
// when they fit in the memory left (core/system_memory.h, the cgroup's limit included). A file
// that does not is mapped instead, so a model larger than memory still runs, paged in from disk
// by the kernel. LOOM_MMAP=1 always maps (less memory when several processes load a file),
// LOOM_MMAP=0 always copies.
constexpr uint64_t kCopyThreshold = uint64_t{64} << 20;
std::atomic<bool> g_map_by_default{false};

// Maps a large file at a 2 MiB-aligned address and asks for huge pages, so that the page
// cache's large folios (ext4 and xfs on current kernels) can be mapped whole, with fewer TLB
// misses than 4 KiB mappings. Small files map as usual.
void* map_file(int fd, uint64_t size) {
  constexpr uint64_t kHuge = uint64_t{2} << 20;
  if (size < kCopyThreshold) return ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const uint64_t span = ((size + 4095) & ~uint64_t{4095}) + kHuge;
  void* area = ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) return ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const auto base = reinterpret_cast<uintptr_t>(area);
  const uintptr_t aligned = (base + kHuge - 1) & ~(kHuge - 1);
  void* p =
      ::mmap(reinterpret_cast<void*>(aligned), size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    ::munmap(area, span);
    return ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  }
  // Give back both ends of the reservation that the mapping did not replace.
  const uintptr_t end = aligned + span - kHuge;
  if (aligned > base) ::munmap(area, aligned - base);
  if (base + span > end) ::munmap(reinterpret_cast<void*>(end), base + span - end);
#ifdef MADV_HUGEPAGE
  ::madvise(p, size, MADV_HUGEPAGE);  // advisory
#endif
  return p;
}

// Whether kAuto reads `size` bytes of `path` into memory (see above).
bool copy_by_default(const std::string& path, uint64_t size) {
  if (size < kCopyThreshold || g_map_by_default.load()) return false;
  if (const char* env = std::getenv("LOOM_MMAP"); env != nullptr && *env != '\0')
    return std::string_view(env) == "0";
  const SystemMemory mem = read_system_memory();
  if (fits_in_memory(size, mem)) return true;
  const std::string message =
      path + " (" + Progress::bytes_text(static_cast<double>(size)) + ") does not fit in the " +
      Progress::bytes_text(static_cast<double>(mem.available)) +
      " of memory left: it stays mapped and is read from disk as needed, which is slower";
  std::fprintf(stderr, "loom: %s\n", message.c_str());
  return false;
}

const uint8_t* read_into_huge_pages(const std::string& path, int fd, uint64_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    ::close(fd);
    fail_errno(path, "cannot allocate memory for", err);
  }
#ifdef MADV_HUGEPAGE
  ::madvise(p, size, MADV_HUGEPAGE);  // advisory: without it the read still works
#endif
  auto* dst = static_cast<uint8_t*>(p);
  uint64_t done = 0;
  // Files of a gigabyte and more take seconds to read: a person sees how far it is.
  const size_t slash = path.rfind('/');
  Progress progress("load " + path.substr(slash == std::string::npos ? 0 : slash + 1),
                    static_cast<int64_t>(size), Progress::Unit::kBytes, size < (uint64_t{1} << 30));
  while (done < size) {
    const ssize_t r = ::pread(fd, dst + done, std::min<uint64_t>(size - done, uint64_t{256} << 20),
                              static_cast<off_t>(done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      int err = r < 0 ? errno : EIO;
      ::munmap(p, size);
      ::close(fd);
      fail_errno(path, "cannot read", err);
    }
    done += static_cast<uint64_t>(r);
    progress.add(r);
  }
  progress.finish();
  ::mprotect(p, size, PROT_READ);
  return dst;
}

// Open MappedFiles by address, for release_file_pages: where the bytes came from and the file's
// identity when they were read.
struct Held {
  const uint8_t* base;
  uint64_t size;
  std::string path;
  bool copied;
  dev_t dev;
  ino_t ino;
  timespec mtime;
};
std::mutex g_held_mutex;
std::vector<Held>& held() {
  static std::vector<Held> files;
  return files;
}

void forget(const uint8_t* base) {
  std::lock_guard lock(g_held_mutex);
  auto& files = held();
  files.erase(
      std::remove_if(files.begin(), files.end(), [base](const Held& h) { return h.base == base; }),
      files.end());
}

}  // namespace

bool release_file_pages(const void* p, uint64_t n) {
  const auto* a = static_cast<const uint8_t*>(p);
  std::lock_guard lock(g_held_mutex);
  for (const Held& h : held()) {
    if (a < h.base || a + n > h.base + h.size) continue;
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(a) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(a) + n) / page * page;
    if (end <= begin) return false;
    void* start = reinterpret_cast<void*>(begin);
    if (!h.copied) return ::madvise(start, end - begin, MADV_DONTNEED) == 0;
    const int fd = ::open(h.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st {};
    const bool same = ::fstat(fd, &st) == 0 && st.st_dev == h.dev && st.st_ino == h.ino &&
                      static_cast<uint64_t>(st.st_size) == h.size &&
                      st.st_mtim.tv_sec == h.mtime.tv_sec && st.st_mtim.tv_nsec == h.mtime.tv_nsec;
    // The file's page for an address is at the same offset as the address in the copy (the
    // copy starts page-aligned), so the new mapping shows the same bytes.
    void* q = same ? ::mmap(start, end - begin, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd,
                            static_cast<off_t>(begin - reinterpret_cast<uintptr_t>(h.base)))
                   : MAP_FAILED;
    ::close(fd);
    return q != MAP_FAILED;
  }
  return false;
}

void MappedFile::map_by_default(bool map) {
  g_map_by_default = map;
}

MappedFile MappedFile::open(const std::string& path, Mode mode) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno(path, "cannot open", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail_errno(path, "cannot stat", err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::kInvalidArgument, "{}: is a directory, expected a file", path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::kInvalidArgument, "{}: not a regular file", path);
  }
  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<uint64_t>(st.st_size);
  const bool copy =
      mode == Mode::kCopy || (mode == Mode::kAuto && copy_by_default(path, file.size_));
  if (copy && file.size_ > 0) {
    file.data_ = read_into_huge_pages(path, fd, file.size_);
  } else if (file.size_ > 0) {
    void* p = map_file(fd, file.size_);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail_errno(path, "cannot map", err);
    }
    file.data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file referenced
  if (file.data_ != nullptr) {
    std::lock_guard lock(g_held_mutex);
    held().push_back({file.data_, file.size_, path, copy, st.st_dev, st.st_ino, st.st_mtim});
  }
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    reset();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  reset();
}

void MappedFile::reset() {
  if (data_ != nullptr) {
    forget(data_);
    ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  data_ = nullptr;
  size_ = 0;
}

HugeBuffer::HugeBuffer(uint64_t size) : size_(size) {
  if (size == 0) return;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fail(ErrorCode::kIoError, "cannot allocate {} bytes: {}", size, std::strerror(errno));
  }
#ifdef MADV_HUGEPAGE
  if (size >= (uint64_t{2} << 20)) ::madvise(p, size, MADV_HUGEPAGE);
#endif
  data_ = static_cast<uint8_t*>(p);
}

HugeBuffer::HugeBuffer(HugeBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

HugeBuffer& HugeBuffer::operator=(HugeBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

HugeBuffer::~HugeBuffer() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

std::string read_text_file(const std::string& path) {
  MappedFile file = MappedFile::open(path);
  return std::string(file.bytes());
}

}  // namespace loom
