#include "core/mapped_file.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
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
// from anonymous transparent huge pages: the TLB misses dominate), so they are moved into
// anonymous memory that asks for huge pages — llama.cpp's --no-mmap, plus MADV_HUGEPAGE —
// when they fit in the memory left (core/system_memory.h, the cgroup's limit included). Copying
// takes seconds per gigabyte, so it is not waited for: the file is mapped, used at once, and a
// background thread of the lowest priority copies it 2 MiB at a time, each copied chunk moved
// over the mapping at the same address (mremap), so no pointer into the file changes and a
// reader sees the same bytes before and after. A file that does not fit stays mapped, so a model
// larger than memory still runs, paged in from disk by the kernel. LOOM_MMAP=1 always maps (less
// memory when several processes load a file), LOOM_MMAP=0 copies before returning.
constexpr uint64_t kCopyThreshold = uint64_t{64} << 20;
std::atomic<bool> g_map_by_default{false};

// Maps a large file at a 2 MiB-aligned address and asks for huge pages, so that the page
// cache's large folios (ext4 and xfs on current kernels) can be mapped whole, with fewer TLB
// misses than 4 KiB mappings. Small files map as usual.
constexpr uint64_t kChunk = uint64_t{2} << 20;  // a huge page

// `size` bytes (rounded up to pages) of anonymous memory with `prot` at a 2 MiB-aligned address:
// twice the alignment is reserved and both unused ends given back. MAP_FAILED when none.
void* aligned_anonymous(uint64_t size, int prot) {
  const uint64_t span = ((size + 4095) & ~uint64_t{4095}) + kChunk;
  void* area = ::mmap(nullptr, span, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) return area;
  const auto base = reinterpret_cast<uintptr_t>(area);
  const uintptr_t aligned = (base + kChunk - 1) & ~(kChunk - 1);
  const uintptr_t end = aligned + span - kChunk;
  if (aligned > base) ::munmap(area, aligned - base);
  if (base + span > end) ::munmap(reinterpret_cast<void*>(end), base + span - end);
  return reinterpret_cast<void*>(aligned);
}

void* map_file(int fd, uint64_t size) {
  void* area = size < kChunk ? MAP_FAILED : aligned_anonymous(size, PROT_NONE);
  void* p = area == MAP_FAILED ? MAP_FAILED
                               : ::mmap(area, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    if (area != MAP_FAILED) ::munmap(area, size);
    return ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  }
#ifdef MADV_HUGEPAGE
  ::madvise(p, size, MADV_HUGEPAGE);  // advisory
#endif
  return p;
}

// How kAuto holds `size` bytes of `path` (see above).
MappedFile::Mode auto_mode(const std::string& path, uint64_t size) {
  using Mode = MappedFile::Mode;
  if (size < kCopyThreshold || g_map_by_default.load()) return Mode::kMap;
  if (const char* env = std::getenv("LOOM_MMAP"); env != nullptr && *env != '\0')
    return std::string_view(env) == "0" ? Mode::kCopy : Mode::kMap;
  const SystemMemory mem = read_system_memory();
  if (fits_in_memory(size, mem)) return Mode::kCopyInBackground;
  const std::string message =
      path + " (" + Progress::bytes_text(static_cast<double>(size)) + ") does not fit in the " +
      Progress::bytes_text(static_cast<double>(mem.available)) +
      " of memory left: it stays mapped and is read from disk as needed, which is slower";
  std::fprintf(stderr, "loom: %s\n", message.c_str());
  return Mode::kMap;
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

// Open MappedFiles by address, for release_file_pages and the background copy: where the bytes
// came from, the file's identity when they were read, and (copied in the background) the state
// of each 2 MiB chunk.
enum class Chunk : uint8_t {
  kFile,      // the file's mapping
  kCopying,   // the file's mapping, being copied (by the copier or a waiter)
  kMemory,    // copied: anonymous memory
  kReleased,  // released while still the file's: left so (release_file_pages)
};
struct Held {
  const uint8_t* base = nullptr;
  uint64_t size = 0;
  std::string path;
  MappedFile::Mode mode = MappedFile::Mode::kMap;  // kCopy, kMap or kCopyInBackground
  dev_t dev = 0;
  ino_t ino = 0;
  timespec mtime{};
  std::vector<Chunk> chunks;  // kCopyInBackground: one per whole 2 MiB chunk
  int fd = -1;                // kCopyInBackground: the file, read by the copy (pread)
  bool cancel = false;        // the file is being closed: the copy stops
  bool stopped = false;       // memory ran out or the file shrank: the rest stays mapped
  std::thread copier;

  Held() = default;
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
  ~Held() {
    if (fd >= 0) ::close(fd);
  }
  // Whether nothing is left for the copy to do.
  bool copied() const {
    return cancel || stopped || std::none_of(chunks.begin(), chunks.end(), [](Chunk c) {
             return c == Chunk::kFile || c == Chunk::kCopying;
           });
  }
};
std::mutex g_held_mutex;
std::vector<std::shared_ptr<Held>>& held() {
  static std::vector<std::shared_ptr<Held>> files;
  return files;
}

// 2 MiB of anonymous memory at a 2 MiB-aligned address (so that it is one huge page, and
// mremap can move it whole), writable; nullptr when there is none.
uint8_t* huge_chunk() {
  void* p = aligned_anonymous(kChunk, PROT_READ | PROT_WRITE);
  if (p == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
  ::madvise(p, kChunk, MADV_HUGEPAGE);
#endif
  return static_cast<uint8_t*>(p);
}

// Copies chunk `i` of `h` (claimed: kCopying) into memory and moves it over the mapping, unless
// it was released or copied meanwhile. The bytes come from the file with pread, not from the
// mapping: a file truncated meanwhile reads short (the copy stops, the rest stays mapped)
// instead of raising SIGBUS in the copier. Called without the lock.
void copy_chunk(Held& h, size_t i) {
  uint8_t* chunk = huge_chunk();
  bool read = chunk != nullptr;
  for (uint64_t done = 0; read && done < kChunk;) {
    const ssize_t r =
        ::pread(h.fd, chunk + done, kChunk - done, static_cast<off_t>(i * kChunk + done));
    if (r < 0 && errno == EINTR) continue;
    read = r > 0;
    done += read ? static_cast<uint64_t>(r) : 0;
  }
  if (chunk != nullptr) ::mprotect(chunk, kChunk, PROT_READ);
  auto* at = const_cast<uint8_t*>(h.base) + i * kChunk;
  std::lock_guard lock(g_held_mutex);
  const bool wanted = !h.cancel && h.chunks[i] == Chunk::kCopying;
  void* moved = read && wanted ? ::mremap(chunk, kChunk, kChunk, MREMAP_MAYMOVE | MREMAP_FIXED, at)
                               : MAP_FAILED;
  if (moved == MAP_FAILED) {
    if (chunk != nullptr) ::munmap(chunk, kChunk);
    if (wanted) h.chunks[i] = Chunk::kFile;
    if (!read || wanted) h.stopped = true;  // no memory, the file shrank, or mremap failed
    return;
  }
  h.chunks[i] = Chunk::kMemory;
}

// The background copy of one file (see the top of this file). Runs at SCHED_IDLE, so that it
// takes only time no one else wants (whoever must have the copy finished does the rest itself:
// MappedFile::wait_for_background_copies); ends when nothing is left to copy, the file is closed,
// memory runs out or the file shrinks (the rest stays mapped, which is correct, only slower).
void copy_in_background(std::shared_ptr<Held> h) {
  sched_param param{};
  ::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &param);
  for (size_t i = 0; i < h->chunks.size(); ++i) {
    {
      std::lock_guard lock(g_held_mutex);
      if (h->cancel || h->stopped) break;
      if (h->chunks[i] != Chunk::kFile) continue;
      h->chunks[i] = Chunk::kCopying;
    }
    copy_chunk(*h, i);
  }
}

// Forgets the file at `base`, first stopping its background copy (whose thread may be waiting
// for the lock, so it is joined without it).
void forget(const uint8_t* base) {
  std::thread copier;
  {
    std::lock_guard lock(g_held_mutex);
    auto& files = held();
    for (auto it = files.begin(); it != files.end(); ++it) {
      if ((*it)->base != base) continue;
      (*it)->cancel = true;
      copier = std::move((*it)->copier);
      files.erase(it);
      break;
    }
  }
  if (copier.joinable()) copier.join();
}

// Maps [begin, end) of the file `h` again over what is there (copied memory), at the same
// offset; false if the file changed on disk since it was opened.
bool map_file_again(const Held& h, uintptr_t begin, uintptr_t end) {
  const int fd = ::open(h.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  const bool same = ::fstat(fd, &st) == 0 && st.st_dev == h.dev && st.st_ino == h.ino &&
                    static_cast<uint64_t>(st.st_size) == h.size &&
                    st.st_mtim.tv_sec == h.mtime.tv_sec && st.st_mtim.tv_nsec == h.mtime.tv_nsec;
  // The file's page for an address is at the same offset as the address in the copy (the copy
  // starts page-aligned), so the new mapping shows the same bytes.
  void* q =
      same ? ::mmap(reinterpret_cast<void*>(begin), end - begin, PROT_READ, MAP_PRIVATE | MAP_FIXED,
                    fd, static_cast<off_t>(begin - reinterpret_cast<uintptr_t>(h.base)))
           : MAP_FAILED;
  ::close(fd);
  return q != MAP_FAILED;
}

}  // namespace

bool release_file_pages(const void* p, uint64_t n) {
  const auto* a = static_cast<const uint8_t*>(p);
  std::lock_guard lock(g_held_mutex);
  for (const auto& file : held()) {
    Held& h = *file;
    if (a < h.base || a + n > h.base + h.size) continue;
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(a) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(a) + n) / page * page;
    if (end <= begin) return false;
    if (h.mode == MappedFile::Mode::kMap) {
      return ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED) == 0;
    }
    if (h.mode == MappedFile::Mode::kCopy) return map_file_again(h, begin, end);
    // Copied in the background: chunk by chunk, copied parts mapped to the file again, the
    // rest dropped, and none of them copied later.
    const auto base = reinterpret_cast<uintptr_t>(h.base);
    bool ok = true;
    for (uintptr_t at = begin; at < end;) {
      const size_t c = (at - base) / kChunk;
      const uintptr_t stop = std::min<uintptr_t>(end, base + (c + 1) * kChunk);
      if (c < h.chunks.size() && h.chunks[c] == Chunk::kMemory) {
        ok = map_file_again(h, at, stop) && ok;
      } else {
        ok = ::madvise(reinterpret_cast<void*>(at), stop - at, MADV_DONTNEED) == 0 && ok;
        if (c < h.chunks.size()) h.chunks[c] = Chunk::kReleased;
      }
      at = stop;
    }
    return ok;
  }
  return false;
}

void MappedFile::wait_for_background_copies() {
  // The copier runs at SCHED_IDLE and may get no CPU at all on a busy machine (a benchmark beside
  // a build waited minutes for it), so the waiter copies what is left at its own priority: first
  // the chunks no one has claimed, then any the copier holds (a 2 MiB copy made twice at worst).
  for (;;) {
    std::shared_ptr<Held> h;
    size_t chunk = 0;
    {
      std::lock_guard lock(g_held_mutex);
      for (const auto& file : held()) {
        if (file->copied()) continue;
        const auto it = std::find(file->chunks.begin(), file->chunks.end(), Chunk::kFile);
        chunk = static_cast<size_t>(
            (it != file->chunks.end()
                 ? it
                 : std::find(file->chunks.begin(), file->chunks.end(), Chunk::kCopying)) -
            file->chunks.begin());
        file->chunks[chunk] = Chunk::kCopying;
        h = file;
        break;
      }
    }
    if (h == nullptr) return;
    copy_chunk(*h, chunk);
  }
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
  if (mode == Mode::kAuto) mode = auto_mode(path, file.size_);
  if (mode == Mode::kCopy && file.size_ > 0) {
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
  if (file.data_ != nullptr) {
    auto h = std::make_shared<Held>();
    h->base = file.data_;
    h->size = file.size_;
    h->path = path;
    h->mode = mode;
    h->dev = st.st_dev;
    h->ino = st.st_ino;
    h->mtime = st.st_mtim;
    // A mapping that is not 2 MiB-aligned (map_file fell back) cannot take whole huge pages.
    if (mode == Mode::kCopyInBackground && reinterpret_cast<uintptr_t>(file.data_) % kChunk == 0) {
      h->chunks.assign(file.size_ / kChunk, Chunk::kFile);
      h->fd = std::exchange(fd, -1);
    } else if (mode == Mode::kCopyInBackground) {
      h->mode = Mode::kMap;
    }
    std::lock_guard lock(g_held_mutex);
    if (!h->chunks.empty()) h->copier = std::thread(copy_in_background, h);
    held().push_back(std::move(h));
  }
  if (fd >= 0) ::close(fd);  // the mapping keeps the file referenced
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
  void* p = size >= kChunk
                ? aligned_anonymous(size, PROT_READ | PROT_WRITE)
                : ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
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

uint8_t* HugeArena::allocate(uint64_t size) {
  constexpr uint64_t kArenaChunk = uint64_t{128} << 20, kAlign = 64;
  uint64_t start = (used_ + kAlign - 1) / kAlign * kAlign;
  if (chunks_.empty() || start + size > chunks_.back().size()) {
    // A new chunk; the old one's unused tail is never touched, so it costs no memory.
    chunks_.emplace_back(std::max(kArenaChunk, (size + kChunk - 1) / kChunk * kChunk));
    start = 0;
  }
  used_ = start + size;
  return chunks_.back().data() + start;
}

std::string read_text_file(const std::string& path) {
  MappedFile file = MappedFile::open(path);
  return std::string(file.bytes());
}

}  // namespace loom
