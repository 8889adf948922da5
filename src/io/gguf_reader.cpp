#include <fmt/format.h>

#include "core/checked_math.h"
#include "core/error.h"
#include "io/byte_reader.h"
#include "io/gguf.h"

namespace loom {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 8;        // nested arrays beyond this are not real metadata

// Smallest encoding of one value of each type, used to reject counts that cannot fit in the
// bytes left before allocating anything for them.
uint64_t min_encoded_size(GgufType type) {
  switch (type) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
    case GgufType::kString:  // u64 length
      return 8;
    case GgufType::kArray:  // u32 type + u64 count
      return 12;
  }
  return 1;
}

}  // namespace

// Parses the header and tensor infos of one GGUF buffer into a GgufFile.
class GgufParser {
 public:
  GgufParser(GgufFile& out, const uint8_t* data, uint64_t size)
      : out_(out), r_(out.name_, data, size) {}

  void parse() {
    uint32_t magic = r_.read<uint32_t>("the magic number");
    if (magic != kMagic) {
      r_.error_at(0, "not a GGUF file: magic is {:?}, expected \"GGUF\"",
                  std::string_view(reinterpret_cast<const char*>(r_.data()), 4));
    }
    out_.version_ = r_.read<uint32_t>("the version");
    if (out_.version_ == 1) {
      r_.error_at(4, "GGUF version 1 is not supported (versions 2 and 3 are)");
    }
    if (out_.version_ != 2 && out_.version_ != 3) {
      if ((out_.version_ & 0xFFFF) == 0 && (out_.version_ >> 16) != 0) {
        fail(ErrorCode::kUnsupported, "{}: byte 4: big-endian GGUF files are not supported",
             out_.name_);
      }
      r_.error_at(4, "unknown GGUF version {} (versions 2 and 3 are supported)", out_.version_);
    }
    uint64_t n_tensors = r_.read<uint64_t>("the tensor count");
    uint64_t n_kv = r_.read<uint64_t>("the metadata count");
    // Each metadata entry takes at least 8 (key length) + 4 (type) + 1 bytes, each tensor
    // info at least 8 + 4 + 4 + 8; reject counts that cannot fit before reserving memory.
    if (n_kv > r_.remaining() / 13) {
      r_.error_at(16, "metadata count {} is impossible: only {} bytes follow", n_kv,
                  r_.remaining());
    }
    if (n_tensors > r_.remaining() / 24) {
      r_.error_at(8, "tensor count {} is impossible: only {} bytes follow", n_tensors,
                  r_.remaining());
    }

    out_.metadata_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) read_kv(i);
    read_alignment();

    out_.tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) read_tensor_info(i);

    auto data_offset = checked_align_up(r_.pos(), out_.alignment_);
    if (!data_offset) r_.error("data section offset overflows");
    out_.data_offset_ = *data_offset;
    if (!out_.tensors_.empty() && out_.data_offset_ > r_.size()) {
      r_.error("file truncated: tensor data should start at byte {} but the file has {} bytes",
               out_.data_offset_, r_.size());
    }
    for (GgufTensorInfo& t : out_.tensors_) locate_data(t);
  }

 private:
  std::string read_string(std::string_view what) {
    uint64_t start = r_.pos();
    uint64_t len = r_.read<uint64_t>(what);
    if (len > r_.remaining()) {
      r_.error_at(start, "length {} of {} runs past the end of the file ({} bytes left)", len, what,
                  r_.remaining());
    }
    return std::string(r_.read_bytes(len, what));
  }

  GgufType read_type(std::string_view what) {
    uint64_t at = r_.pos();
    uint32_t t = r_.read<uint32_t>(what);
    if (t > static_cast<uint32_t>(GgufType::kF64)) {
      r_.error_at(at, "unknown metadata value type {} for {}", t, what);
    }
    return static_cast<GgufType>(t);
  }

  GgufValue read_value(GgufType type, const std::string& key, int depth) {
    switch (type) {
      case GgufType::kU8:
        return GgufValue(r_.read<uint8_t>(key));
      case GgufType::kI8:
        return GgufValue(r_.read<int8_t>(key));
      case GgufType::kU16:
        return GgufValue(r_.read<uint16_t>(key));
      case GgufType::kI16:
        return GgufValue(r_.read<int16_t>(key));
      case GgufType::kU32:
        return GgufValue(r_.read<uint32_t>(key));
      case GgufType::kI32:
        return GgufValue(r_.read<int32_t>(key));
      case GgufType::kF32:
        return GgufValue(r_.read<float>(key));
      case GgufType::kU64:
        return GgufValue(r_.read<uint64_t>(key));
      case GgufType::kI64:
        return GgufValue(r_.read<int64_t>(key));
      case GgufType::kF64:
        return GgufValue(r_.read<double>(key));
      case GgufType::kBool: {
        uint64_t at = r_.pos();
        uint8_t b = r_.read<uint8_t>(key);
        if (b > 1) r_.error_at(at, "metadata '{}': bool value {} is neither 0 nor 1", key, b);
        return GgufValue(b == 1);
      }
      case GgufType::kString:
        return GgufValue(read_string(key));  // `what` stays cheap: vocab arrays hold 100k+
      case GgufType::kArray: {
        if (depth >= kMaxArrayDepth) {
          r_.error("metadata '{}': arrays nested deeper than {} levels", key, kMaxArrayDepth);
        }
        GgufType elem = read_type(fmt::format("the element type of array '{}'", key));
        uint64_t at = r_.pos();
        uint64_t count = r_.read<uint64_t>(key);
        if (count > r_.remaining() / min_encoded_size(elem)) {
          r_.error_at(at, "metadata '{}': array of {} {} values cannot fit in the {} bytes left",
                      key, count, gguf_type_name(elem), r_.remaining());
        }
        std::vector<GgufValue> items;
        items.reserve(count);
        for (uint64_t i = 0; i < count; ++i) items.push_back(read_value(elem, key, depth + 1));
        return GgufValue::array(elem, std::move(items));
      }
    }
    LOOM_ASSERT(false && "read_type validated the type");
    return {};
  }

  void read_kv(uint64_t index) {
    uint64_t at = r_.pos();
    std::string key = read_string(fmt::format("the key of metadata entry {}", index));
    GgufType type = read_type(fmt::format("the type of metadata '{}'", key));
    GgufValue value = read_value(type, key, 0);
    auto [it, inserted] = out_.metadata_index_.emplace(key, out_.metadata_.size());
    if (!inserted) r_.error_at(at, "duplicate metadata key '{}'", key);
    out_.metadata_.emplace_back(std::move(key), std::move(value));
  }

  void read_alignment() {
    const GgufValue* v = out_.find("general.alignment");
    if (v == nullptr) return;
    if (v->type() != GgufType::kU32) {
      fail(ErrorCode::kCorruption, "{}: metadata 'general.alignment' has type {}, expected u32",
           out_.name_, gguf_type_name(v->type()));
    }
    uint32_t a = std::get<uint32_t>(v->storage());
    if (a == 0 || (a & (a - 1)) != 0) {
      fail(ErrorCode::kCorruption,
           "{}: metadata 'general.alignment' is {}, expected a non-zero power of two", out_.name_,
           a);
    }
    out_.alignment_ = a;
  }

  void read_tensor_info(uint64_t index) {
    uint64_t at = r_.pos();
    GgufTensorInfo t;
    t.name = read_string(fmt::format("the name of tensor {}", index));
    uint32_t n_dims = r_.read<uint32_t>(fmt::format("the rank of tensor '{}'", t.name));
    if (n_dims > kGgufMaxDims) {
      r_.error_at(at, "tensor '{}' has {} dimensions, at most {} are allowed", t.name, n_dims,
                  kGgufMaxDims);
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim = r_.read<uint64_t>(fmt::format("the shape of tensor '{}'", t.name));
      if (dim > static_cast<uint64_t>(INT64_MAX)) {
        r_.error_at(at, "tensor '{}': dimension {} is {}, larger than 2^63-1", t.name, d, dim);
      }
      auto product = checked_mul(n_elements, dim);
      if (!product) {
        r_.error_at(at, "tensor '{}': element count overflows 64 bits", t.name);
      }
      n_elements = *product;
      t.ne.push_back(dim);
    }
    uint64_t type_at = r_.pos();
    uint32_t type_id = r_.read<uint32_t>(fmt::format("the type of tensor '{}'", t.name));
    auto dtype = dtype_from_ggml_id(type_id);
    if (!dtype) r_.error_at(type_at, "tensor '{}' has unknown ggml type {}", t.name, type_id);
    t.dtype = *dtype;
    uint64_t offset_at = r_.pos();
    t.offset = r_.read<uint64_t>(fmt::format("the data offset of tensor '{}'", t.name));

    uint64_t inner = t.ne.empty() ? 1 : t.ne[0];
    uint32_t block = dtype_info(t.dtype).block_size;
    if (inner % block != 0) {
      r_.error_at(at, "tensor '{}': row length {} is not a multiple of the {} block size {}",
                  t.name, inner, dtype_name(t.dtype), block);
    }
    auto bytes = tensor_bytes(t.dtype, inner, inner == 0 ? 0 : n_elements / inner);
    if (!bytes) r_.error_at(at, "tensor '{}': byte size overflows 64 bits", t.name);
    t.n_bytes = *bytes;
    if (t.offset % out_.alignment_ != 0) {
      r_.error_at(offset_at, "tensor '{}': data offset {} is not a multiple of the alignment {}",
                  t.name, t.offset, out_.alignment_);
    }
    auto [it, inserted] = out_.tensor_index_.emplace(t.name, out_.tensors_.size());
    if (!inserted) r_.error_at(at, "duplicate tensor name '{}'", t.name);
    out_.tensors_.push_back(std::move(t));
  }

  void locate_data(GgufTensorInfo& t) {
    auto start = checked_add(out_.data_offset_, t.offset);
    auto end = start ? checked_add(*start, t.n_bytes) : std::nullopt;
    if (!end || *end > r_.size()) {
      fail(ErrorCode::kCorruption,
           "{}: tensor '{}': data at bytes {}+{} (offset {} + {} bytes) extends past the end of "
           "the file ({} bytes)",
           out_.name_, t.name, out_.data_offset_, t.offset, t.offset, t.n_bytes, r_.size());
    }
    t.data = r_.data() + *start;
  }

  GgufFile& out_;
  ByteReader r_;
};

std::vector<int64_t> GgufTensorInfo::shape() const {
  return std::vector<int64_t>(ne.rbegin(), ne.rend());
}

GgufFile GgufFile::open(const std::string& path) {
  auto mapping = std::make_shared<MappedFile>(MappedFile::open(path));
  GgufFile file = parse(path, mapping->data(), mapping->size());
  file.mapping_ = std::move(mapping);
  return file;
}

GgufFile GgufFile::parse(std::string name, const uint8_t* data, uint64_t size) {
  GgufFile file;
  file.name_ = std::move(name);
  file.size_ = size;
  GgufParser(file, data, size).parse();
  return file;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = metadata_index_.find(std::string(key));
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

namespace {
[[noreturn]] void wrong_type(const std::string& file, std::string_view key, const GgufValue& v,
                             std::string_view expected) {
  fail(ErrorCode::kCorruption, "{}: metadata '{}' has type {}, expected {}", file, key,
       gguf_type_name(v.type()), expected);
}
}  // namespace

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (const std::string* s = v->as_string()) return *s;
  wrong_type(name_, key, *v, "string");
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (auto i = v->as_int()) return i;
  wrong_type(name_, key, *v, "an integer");
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (auto d = v->as_double()) return d;
  wrong_type(name_, key, *v, "a number");
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (auto b = v->as_bool()) return b;
  wrong_type(name_, key, *v, "bool");
}

const GgufArray* GgufFile::get_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return nullptr;
  if (const GgufArray* a = v->as_array()) return a;
  wrong_type(name_, key, *v, "array");
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace loom
