// Loads a reference model folder's reference.json / reference.safetensors (made by
// transformers in float32 from the bf16 weights) and compares loom's logits with them.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "io/safetensors.h"

namespace loom::test {

inline std::string ref_model_dir(const std::string& name) {
  return std::string(LOOM_TEST_DATA_DIR) + "/ref/models/" + name;
}

struct Reference {
  nlohmann::json json;
  SafetensorsFile tensors;
  std::vector<int32_t> ids(const char* key) const {
    return json.at(key).get<std::vector<int32_t>>();
  }
  const float* f32(const char* name) const {
    const SafetensorsTensor* t = tensors.find(name);
    return t == nullptr ? nullptr : reinterpret_cast<const float*>(t->data);
  }
  const int32_t* i32(const char* name) const {
    const SafetensorsTensor* t = tensors.find(name);
    return t == nullptr ? nullptr : reinterpret_cast<const int32_t*>(t->data);
  }
};

inline Reference load_reference(const std::string& model) {
  const std::string dir = ref_model_dir(model);
  return Reference{nlohmann::json::parse(read_text_file(dir + "/reference.json")),
                   SafetensorsFile::open(dir + "/reference.safetensors")};
}

// ||a - b|| / ||b|| over n values.
inline double relative_l2(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline double logsumexp(const float* x, int64_t n) {
  double m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(x[i]));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(x[i] - m);
  return m + std::log(s);
}

inline int32_t argmax(const float* x, int64_t n) {
  int32_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

// Checks loom's logits for every position of sequence_ids against the reference: the full
// logits when the reference has them (small vocabularies), else the last prompt position's
// logits plus argmax and logsumexp at every position. Returns the worst relative L2 seen.
inline double expect_logits_match(const Reference& ref, const std::vector<float>& logits,
                                  int64_t vocab, double tolerance) {
  const std::vector<int32_t> seq = ref.ids("sequence_ids");
  const int64_t n = static_cast<int64_t>(seq.size());
  EXPECT_EQ(static_cast<int64_t>(logits.size()), n * vocab);
  double worst = 0;
  if (const float* full = ref.f32("logits")) {
    for (int64_t p = 0; p < n; ++p) {
      const double e = relative_l2(logits.data() + p * vocab, full + p * vocab, vocab);
      worst = std::max(worst, e);
      EXPECT_LT(e, tolerance) << "position " << p;
    }
  } else {
    const int64_t last_prompt = static_cast<int64_t>(ref.ids("prompt_ids").size()) - 1;
    const float* last = ref.f32("prompt_last_logits");
    EXPECT_NE(last, nullptr) << "the reference has neither logits nor prompt_last_logits";
    if (last == nullptr) return INFINITY;
    worst = relative_l2(logits.data() + last_prompt * vocab, last, vocab);
    EXPECT_LT(worst, tolerance) << "prompt_last_logits";
  }
  // Every reference carries both: one missing is a broken reference, not a check to skip.
  const int32_t* am = ref.i32("argmax_per_position");
  const float* lse = ref.f32("logsumexp_per_position");
  EXPECT_NE(am, nullptr) << "the reference has no argmax_per_position";
  EXPECT_NE(lse, nullptr) << "the reference has no logsumexp_per_position";
  if (am == nullptr || lse == nullptr || static_cast<int64_t>(logits.size()) != n * vocab) {
    return INFINITY;
  }
  for (int64_t p = 0; p < n; ++p) {
    const float* row = logits.data() + p * vocab;
    EXPECT_EQ(argmax(row, vocab), am[p]) << "argmax at position " << p;
    EXPECT_NEAR(logsumexp(row, vocab), lse[p],
                1e-4 * std::max(1.0, std::abs(static_cast<double>(lse[p]))))
        << "logsumexp at position " << p;
  }
  return worst;
}

}  // namespace loom::test
