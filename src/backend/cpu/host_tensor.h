// Host memory for the CPU backend's tensors: the DeviceBuffer behind an Activations handle
// and row views of it, for the CPU ops. Included only under src/backend/.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/buffer_access.h"
#include "core/error.h"

namespace loom::cpu {

inline constexpr char kHostKind[] = "cpu";

class HostBuffer final : public DeviceBuffer {
 public:
  HostBuffer() : DeviceBuffer(kHostKind) {}
  uint64_t capacity_bytes() const override { return data.size() * sizeof(float); }
  std::vector<float> data;  // grows, never shrinks
};

// Rows of a host tensor.
template <typename T>
class HostRows {
 public:
  HostRows(T* data, int64_t cols) : data_(data), cols_(cols) {}
  T* data() const { return data_; }
  T* row(int64_t r) const { return data_ + r * cols_; }

 private:
  T* data_;
  int64_t cols_;
};

[[noreturn]] inline void not_host(const DeviceBuffer& b) {
  fail(ErrorCode::kInvalidArgument, "a tensor in '{}' memory was given to the CPU backend",
       b.kind());
}

inline HostBuffer* host_buffer(const DeviceBuffer* b) {
  if (b == nullptr) return nullptr;
  if (b->kind() != kHostKind) not_host(*b);
  return static_cast<HostBuffer*>(const_cast<DeviceBuffer*>(b));
}

// The rows of an input (empty tensors have no memory).
inline HostRows<const float> host(const Activations& t) {
  HostBuffer* b = host_buffer(BufferAccess::buffer(t));
  return {b != nullptr ? b->data.data() : nullptr, t.cols()};
}
inline HostRows<float> host(Activations& t) {
  HostBuffer* b = host_buffer(BufferAccess::buffer(t));
  return {b != nullptr ? b->data.data() : nullptr, t.cols()};
}

// Sizes t as [rows, cols] in host memory, reusing (and keeping) what it has; a tensor holding
// another backend's memory gets new host memory.
inline HostRows<float> host_alloc(Activations& t, int64_t rows, int64_t cols) {
  DeviceBuffer* b = BufferAccess::buffer(t);
  if (b == nullptr || b->kind() != kHostKind) {
    BufferAccess::set_buffer(t, std::make_unique<HostBuffer>());
    b = BufferAccess::buffer(t);
  }
  auto* h = static_cast<HostBuffer*>(b);
  const auto n = static_cast<size_t>(rows * cols);
  if (n > h->data.size()) h->data.resize(n);
  BufferAccess::set_shape(t, rows, cols);
  return {h->data.data(), cols};
}

}  // namespace loom::cpu
