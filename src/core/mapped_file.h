// MappedFile — a whole file held read-only in memory: mapped, and — for files of 64 MiB and
// more, i.e. model weights, when they fit in memory — copied in the background into anonymous
// huge-page memory, which decode streams faster than page-cache pages (see mapped_file.cpp;
// LOOM_MMAP=1 keeps the mapping, LOOM_MMAP=0 copies before returning). Weights are used in place
// from it, so the MappedFile must outlive every view into it; ModelSpec keeps its files alive for
// that reason. Move-only. Thread-safe for concurrent reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

class MappedFile {
 public:
  // How the bytes are held: kAuto picks by size, free memory and LOOM_MMAP (mapped_file.cpp);
  // kCopy reads the file into anonymous huge-page memory before returning; kMap maps it;
  // kCopyInBackground maps it and copies it into huge-page memory from a background thread,
  // chunk by chunk at the same addresses (the bytes never change, only how fast they read).
  enum class Mode { kAuto, kCopy, kMap, kCopyInBackground };
  // Maps `path`. Throws Error(kNotFound) if it does not exist, kIoError if it cannot be read.
  static MappedFile open(const std::string& path, Mode mode = Mode::kAuto);
  // Makes kAuto map every file (as LOOM_MMAP=1 does). Set under a tensor-parallel group, whose
  // ranks read only their shards of the weights: a copy would hold the whole file on every rank.
  static void map_by_default(bool map);
  // Waits until every background copy has finished (benchmarks, tests).
  static void wait_for_background_copies();

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  std::string_view bytes() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  void reset();

  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// Gives back the memory under bytes [p, p + n) of a MappedFile that nothing will read often
// again (weights a backend has repacked), keeping them readable: the whole pages inside the
// range are mapped to the file again (a copied file) or dropped from memory (a mapped one), so a
// later read faults them in from the file. Returns whether pages were released; false when p is
// not inside an open MappedFile, the range holds no whole page, or the file changed on disk
// since it was read (its size or modification time), in which case nothing changes.
bool release_file_pages(const void* p, uint64_t n);

// Anonymous, writable, zero-filled memory that asks for transparent huge pages when large (from
// a 2 MiB-aligned address, so that only its last partial 2 MiB cannot be one). Move-only; throws
// Error(kIoError) when the memory cannot be had.
class HugeBuffer {
 public:
  HugeBuffer() = default;
  explicit HugeBuffer(uint64_t size);
  HugeBuffer(HugeBuffer&& other) noexcept;
  HugeBuffer& operator=(HugeBuffer&& other) noexcept;
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
  ~HugeBuffer();

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// Many buffers of a few megabytes each (a model's repacked weight matrices), one after another
// in HugeBuffers of at least 128 MiB, so that they lie in whole huge pages: separate buffers each
// had a partial 2 MiB page at both ends left in 4 KiB pages (a fifth of a 1.1B Q4_0 model's
// repacked weights: one-thread decode 4-9% slower for Q4_0, 6-8% for Q4_K), and rounding each
// up to 2 MiB cost 160 MB of memory.
// Memory is given back when the arena is destroyed. Not thread-safe.
class HugeArena {
 public:
  // `size` bytes, 64-byte aligned, zero-filled.
  uint8_t* allocate(uint64_t size);

 private:
  std::vector<HugeBuffer> chunks_;
  uint64_t used_ = 0;  // bytes of chunks_.back() handed out
};

// Reads a whole (small) text file; throws like MappedFile::open.
std::string read_text_file(const std::string& path);

}  // namespace loom
