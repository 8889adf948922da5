#include "convert/convert.h"

#include <fmt/format.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "quant/quant.h"

namespace loom {

namespace {

// llama.cpp's converter permutes the rows of llama's Q and K so that its interleaved rope
// equals HF's rotate_half: within each head, row (half j, index i) moves to (index i, half j).
std::vector<int64_t> llama_qk_row_order(int64_t rows, int64_t n_heads) {
  const int64_t head_dim = rows / n_heads, half = head_dim / 2;
  std::vector<int64_t> src(rows);
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) src[h * head_dim + 2 * i + j] = h * head_dim + j * half + i;
    }
  }
  return src;
}

bool is_matrix_weight(const TensorInfo& t) {
  return t.shape.size() == 2 && t.name.ends_with(".weight");
}

}  // namespace

DType fallback_type(DType wanted, int64_t n_cols) {
  if (n_cols % dtype_info(wanted).block_size == 0) return wanted;
  DType next = DType::kF16;
  switch (wanted) {
    case DType::kQ4_K:
    case DType::kQ2_K:
    case DType::kQ3_K:
      next = DType::kQ5_0;
      break;
    case DType::kQ5_K:
      next = DType::kQ5_1;
      break;
    case DType::kQ6_K:
      next = DType::kQ8_0;
      break;
    default:
      break;
  }
  return n_cols % dtype_info(next).block_size == 0 ? next : DType::kF16;
}

void write_hparams_metadata(const ModelSpec& spec, GgufWriter& w) {
  const HyperParams& hp = spec.hparams;
  const std::string& a = spec.architecture;
  auto u32 = [&](const std::string& key, int64_t v) {
    if (v > 0) w.set(a + "." + key, GgufValue(static_cast<uint32_t>(v)));
  };
  auto f32 = [&](const std::string& key, double v) {
    if (v != 0.0) w.set(a + "." + key, GgufValue(static_cast<float>(v)));
  };
  w.set("general.architecture", GgufValue(a));
  w.set("general.name", GgufValue(spec.name));
  w.set("general.file_type", GgufValue(uint32_t{0}));  // replaced by the caller
  u32("vocab_size", hp.vocab_size);
  u32("context_length", hp.context_length);
  u32("embedding_length", hp.hidden_size);
  u32("block_count", hp.n_layers);
  u32("feed_forward_length", hp.ffn_size);
  u32("attention.head_count", hp.n_heads);
  u32("attention.head_count_kv", hp.n_kv_heads);
  if (hp.head_dim > 0 && hp.n_heads > 0 && hp.head_dim * hp.n_heads != hp.hidden_size) {
    u32("attention.key_length", hp.head_dim);
    u32("attention.value_length", hp.head_dim);
  }
  u32("rope.dimension_count", hp.rope_dims > 0 ? hp.rope_dims : hp.head_dim);
  f32("rope.freq_base", hp.rope_theta);
  f32("attention.layer_norm_rms_epsilon", hp.norm_eps);
  if (hp.rope_scaling.type == "linear") {
    w.set(a + ".rope.scaling.type", GgufValue("linear"));
    f32("rope.scaling.factor", hp.rope_scaling.factor);
  }
  u32("attention.sliding_window", hp.sliding_window);
  u32("expert_count", hp.n_experts);
  u32("expert_used_count", hp.n_experts_used);
}

ConvertReport convert_to_gguf(const ModelSpec& spec, const std::string& out,
                              const ConvertOptions& options) {
  static const std::string_view kSupported[] = {"llama", "qwen2", "qwen3"};
  bool supported = false;
  for (std::string_view s : kSupported) supported |= spec.architecture == s;
  if (!supported || spec.hparams.n_experts > 0) {
    fail(ErrorCode::kUnsupported, "{}: converting architecture '{}' is not supported yet",
         spec.path, spec.architecture);
  }
  if (!can_quantize(options.type)) {
    fail(ErrorCode::kUnsupported, "cannot write type {}", dtype_name(options.type));
  }
  GgufWriter w;
  write_hparams_metadata(spec, w);
  if (options.write_tokenizer) options.write_tokenizer(spec, w);

  ThreadPool pool(options.threads);
  ConvertReport report;
  std::vector<std::vector<uint8_t>> storage;  // converted bytes live until write()
  storage.reserve(spec.tensors.size() + 1);
  const bool permute_qk = spec.architecture == "llama" && spec.format == ModelFormat::kHfFolder;

  for (const TensorInfo& t : spec.tensors) {
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < t.shape.size(); ++i) rows *= t.shape[i];
    DType target = is_matrix_weight(t) ? fallback_type(options.type, cols) : DType::kF32;
    if (is_matrix_weight(t) && target != options.type) ++report.n_fallback;
    if (!can_dequantize(t.dtype)) {
      fail(ErrorCode::kUnsupported, "{}: tensor '{}' has type {}, which loom cannot convert",
           spec.path, t.name, dtype_name(t.dtype));
    }
    std::vector<int64_t> order;
    if (permute_qk && (t.name.ends_with("attn_q.weight") || t.name.ends_with("attn_k.weight"))) {
      const int64_t heads =
          t.name.ends_with("attn_q.weight") ? spec.hparams.n_heads : spec.hparams.n_kv_heads;
      order = llama_qk_row_order(rows, heads);
    }
    const uint64_t src_row = *row_bytes(t.dtype, cols);
    const uint64_t dst_row = *row_bytes(target, cols);
    std::vector<uint8_t>& dst = storage.emplace_back(dst_row * rows);
    pool.parallel_for(rows, [&](int64_t b, int64_t e, int) {
      std::vector<float> buf(cols);
      for (int64_t r = b; r < e; ++r) {
        const int64_t s = order.empty() ? r : order[r];
        dequantize_row(t.dtype, t.data + s * src_row, buf.data(), cols);
        quantize_row(target, buf.data(), dst.data() + r * dst_row, cols);
      }
    });
    std::vector<uint64_t> ne(t.shape.rbegin(), t.shape.rend());
    w.add_tensor(t.name, target, ne, dst.data(), dst.size());
    ++report.n_tensors;
    report.bytes += dst.size();
  }

  // llama3 rope scaling: llama.cpp keeps it as per-dimension frequency divisors.
  if (spec.hparams.rope_scaling.type == "llama3") {
    const RopeScaling& s = spec.hparams.rope_scaling;
    const int64_t dims =
        spec.hparams.rope_dims > 0 ? spec.hparams.rope_dims : spec.hparams.head_dim;
    std::vector<uint8_t>& bytes = storage.emplace_back(dims / 2 * sizeof(float));
    auto* factors = reinterpret_cast<float*>(bytes.data());
    const double low_wl = s.original_context / s.low_freq_factor;
    const double high_wl = s.original_context / s.high_freq_factor;
    for (int64_t i = 0; i < dims / 2; ++i) {
      const double freq = 1.0 / std::pow(spec.hparams.rope_theta, 2.0 * i / dims);
      const double wavelen = 2 * std::numbers::pi / freq;
      double f = 1.0;
      if (wavelen > low_wl) {
        f = s.factor;
      } else if (wavelen >= high_wl) {
        const double smooth = (s.original_context / wavelen - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        f = 1.0 / ((1 - smooth) / s.factor + smooth);
      }
      factors[i] = static_cast<float>(f);
    }
    w.add_tensor("rope_freqs.weight", DType::kF32, {static_cast<uint64_t>(dims / 2)}, bytes.data(),
                 bytes.size());
  }
  // llama.cpp's LLAMA_FTYPE numbering for general.file_type.
  uint32_t ftype = 0;
  switch (options.type) {
    case DType::kF32:
      ftype = 0;
      break;
    case DType::kF16:
      ftype = 1;
      break;
    case DType::kQ4_0:
      ftype = 2;
      break;
    case DType::kQ4_1:
      ftype = 3;
      break;
    case DType::kQ8_0:
      ftype = 7;
      break;
    case DType::kQ5_0:
      ftype = 8;
      break;
    case DType::kQ5_1:
      ftype = 9;
      break;
    case DType::kQ4_K:
      ftype = 15;
      break;
    case DType::kQ5_K:
      ftype = 17;
      break;
    case DType::kQ6_K:
      ftype = 18;
      break;
    case DType::kBF16:
      ftype = 32;
      break;
    default:
      break;
  }
  w.set("general.file_type", GgufValue(ftype));
  w.write(out);
  return report;
}

}  // namespace loom
