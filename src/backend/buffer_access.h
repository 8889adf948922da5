// BufferAccess — how backend implementations reach the memory behind the Activations handle.
// Only files under src/backend/ include this header (tests/backend/boundary_test.cpp checks
// it): model, engine, server and CLI code move data with Backend::upload/download.
#pragma once

#include <memory>
#include <utility>

#include "backend/backend.h"

namespace loom {

class BufferAccess {
 public:
  static DeviceBuffer* buffer(Activations& t) { return t.buffer_.get(); }
  static const DeviceBuffer* buffer(const Activations& t) { return t.buffer_.get(); }
  // Sets the shape, keeping the memory.
  static void set_shape(Activations& t, int64_t rows, int64_t cols) {
    t.rows_ = rows;
    t.cols_ = cols;
  }
  static void set_buffer(Activations& t, std::unique_ptr<DeviceBuffer> b) {
    t.buffer_ = std::move(b);
  }
};

}  // namespace loom
