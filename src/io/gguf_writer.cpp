#include <fmt/format.h>

#include <cstdio>
#include <type_traits>

#include "core/checked_math.h"
#include "core/error.h"
#include "core/output_file.h"
#include "io/gguf.h"

namespace loom {

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kVersion = 3;

class FileSink {
 public:
  explicit FileSink(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {
    if (f_ == nullptr) fail(ErrorCode::kIoError, "{}: cannot create file", path);
  }
  ~FileSink() {
    if (f_ != nullptr) std::fclose(f_);
  }
  void write(const void* data, uint64_t n) {
    if (n != 0 && std::fwrite(data, 1, n, f_) != n) {
      fail(ErrorCode::kIoError, "{}: write failed (disk full?)", path_);
    }
    written_ += n;
  }
  uint64_t written() const { return written_; }
  void close() {
    int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) fail(ErrorCode::kIoError, "{}: write failed on close (disk full?)", path_);
  }

 private:
  std::string path_;
  std::FILE* f_;
  uint64_t written_ = 0;
};

class StringSink {
 public:
  void write(const void* data, uint64_t n) { out.append(static_cast<const char*>(data), n); }
  uint64_t written() const { return out.size(); }
  std::string out;
};

template <typename Sink, typename T>
void put(Sink& sink, T value) {
  static_assert(std::is_trivially_copyable_v<T>);
  sink.write(&value, sizeof(T));
}

template <typename Sink>
void put_string(Sink& sink, const std::string& s) {
  put<Sink, uint64_t>(sink, s.size());
  sink.write(s.data(), s.size());
}

template <typename Sink>
void put_value(Sink& sink, const GgufValue& value) {
  std::visit(
      [&sink](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          put_string(sink, v);
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          put<Sink, uint32_t>(sink, static_cast<uint32_t>(v.elem_type));
          put<Sink, uint64_t>(sink, v.items.size());
          for (const GgufValue& item : v.items) put_value(sink, item);
        } else if constexpr (std::is_same_v<T, bool>) {
          put<Sink, uint8_t>(sink, v ? 1 : 0);
        } else {
          put<Sink, T>(sink, v);
        }
      },
      value.storage());
}

template <typename Sink>
void pad_to(Sink& sink, uint64_t alignment) {
  static constexpr uint8_t kZeros[64] = {};
  uint64_t target = *checked_align_up(sink.written(), alignment);
  while (sink.written() < target) {
    sink.write(kZeros, std::min<uint64_t>(sizeof(kZeros), target - sink.written()));
  }
}

void check_array_types(const std::string& key, const GgufValue& value) {
  const GgufArray* a = value.as_array();
  if (a == nullptr) return;
  for (const GgufValue& item : a->items) {
    if (item.type() != a->elem_type) {
      fail(ErrorCode::kInvalidArgument,
           "GGUF metadata '{}': array declared as {} holds a {} element", key,
           gguf_type_name(a->elem_type), gguf_type_name(item.type()));
    }
    check_array_types(key, item);
  }
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  check_array_types(key, value);
  if (key == "general.alignment") {
    const auto* a = std::get_if<uint32_t>(&value.storage());
    if (a == nullptr || *a == 0 || (*a & (*a - 1)) != 0) {
      fail(ErrorCode::kInvalidArgument, "general.alignment must be a u32 power of two");
    }
    alignment_ = *a;
  }
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::set_alignment(uint32_t alignment) {
  set("general.alignment", GgufValue(alignment));
}

void GgufWriter::add_tensor(std::string name, DType dtype, std::vector<uint64_t> ne,
                            const void* data, uint64_t n_bytes) {
  if (!dtype_info(dtype).gguf) {
    fail(ErrorCode::kInvalidArgument, "tensor '{}': {} cannot be stored in GGUF", name,
         dtype_name(dtype));
  }
  if (ne.size() > kGgufMaxDims) {
    fail(ErrorCode::kInvalidArgument, "tensor '{}': {} dimensions, GGUF allows {}", name, ne.size(),
         kGgufMaxDims);
  }
  uint64_t n = 1;
  for (uint64_t d : ne) {
    auto p = checked_mul(n, d);
    if (!p) fail(ErrorCode::kInvalidArgument, "tensor '{}': element count overflows", name);
    n = *p;
  }
  uint64_t inner = ne.empty() ? 1 : ne[0];
  auto expected = tensor_bytes(dtype, inner, inner == 0 ? 0 : n / inner);
  if (!expected || *expected != n_bytes) {
    fail(ErrorCode::kInvalidArgument, "tensor '{}': {} bytes given, {} {} needs {}", name, n_bytes,
         dtype_name(dtype), fmt::join(ne, "x"), expected ? fmt::format("{}", *expected) : "?");
  }
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) fail(ErrorCode::kInvalidArgument, "duplicate tensor name '{}'", name);
  }
  tensors_.push_back({std::move(name), dtype, std::move(ne), data, n_bytes});
}

template <typename Sink>
void GgufWriter::emit(Sink& sink) const {
  sink.write(kMagic, 4);
  put<Sink, uint32_t>(sink, kVersion);
  put<Sink, uint64_t>(sink, tensors_.size());
  put<Sink, uint64_t>(sink, metadata_.size());
  for (const auto& [key, value] : metadata_) {
    put_string(sink, key);
    put<Sink, uint32_t>(sink, static_cast<uint32_t>(value.type()));
    put_value(sink, value);
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    put_string(sink, t.name);
    put<Sink, uint32_t>(sink, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) put<Sink, uint64_t>(sink, d);
    put<Sink, uint32_t>(sink, static_cast<uint32_t>(t.dtype));
    put<Sink, uint64_t>(sink, offset);
    offset = *checked_align_up(offset + t.n_bytes, alignment_);
  }
  // The data section starts aligned. A file without tensors (a vocabulary-only file) ends
  // right after the header, as llama.cpp's gguf-py writes it.
  if (tensors_.empty()) return;
  pad_to(sink, alignment_);
  uint64_t data_start = sink.written();
  for (const PendingTensor& t : tensors_) {
    sink.write(t.data, t.n_bytes);
    uint64_t rel = sink.written() - data_start;
    uint64_t target = *checked_align_up(rel, alignment_);
    static constexpr uint8_t kZeros[64] = {};
    while (rel < target) {
      uint64_t n = std::min<uint64_t>(sizeof(kZeros), target - rel);
      sink.write(kZeros, n);
      rel += n;
    }
  }
}

void GgufWriter::write(const std::string& path) const {
  const std::string tmp = output_staging_path(path);
  try {
    FileSink sink(tmp);
    emit(sink);
    sink.close();
  } catch (...) {
    discard_output_file(tmp, path);
    throw;
  }
  commit_output_file(tmp, path);
}

std::string GgufWriter::write_to_string() const {
  StringSink sink;
  emit(sink);
  return std::move(sink.out);
}

}  // namespace loom
