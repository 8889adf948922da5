// PairMap: an open-addressing hash map from a token-id pair to its BPE merge, the lookup in
// the innermost loop of BPE. Flat storage (one probe is usually one cache line) instead of the
// node-per-entry std::unordered_map.
//
// Ownership: owns its table. Thread-safety: immutable after construction.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

namespace loom::tokenizer {

class PairMap {
 public:
  struct Value {
    uint32_t rank;
    int32_t result;
  };

  PairMap() = default;
  explicit PairMap(size_t expected) {
    size_t capacity = std::bit_ceil(std::max<size_t>(16, expected * 2));  // load <= 1/2
    slots_.assign(capacity, Slot{kEmpty, {}});
    mask_ = capacity - 1;
  }

  // Inserts unless the pair is present (the first rule for a pair wins).
  void insert(int32_t left, int32_t right, Value value) {
    uint64_t key = make_key(left, right);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return;
      if (slots_[i].key == kEmpty) {
        slots_[i] = {key, value};
        return;
      }
    }
  }

  const Value* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    uint64_t key = make_key(left, right);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  // Ids are non-negative, so the all-ones key (-1, -1) never occurs.
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key;
    Value value;
  };
  static uint64_t make_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  size_t hash(uint64_t key) const {
    // Fibonacci hashing: the multiply mixes both ids into the high bits.
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_;
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace loom::tokenizer
