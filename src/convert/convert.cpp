#include "convert/convert.h"

#include <fmt/format.h>

#include <cmath>
#include <numbers>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/progress.h"
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

// One tensor of the output file: a source tensor, or per-expert tensors stacked along a new
// outer dimension (llama.cpp's blk.N.ffn_gate_exps.weight [n_expert, ffn, hidden], ...).
struct OutTensor {
  std::string name;
  std::vector<int64_t> shape;            // outermost first
  std::vector<const TensorInfo*> parts;  // 1, or n_expert stacked
  std::vector<int64_t> order;            // row permutation within a part (llama Q/K)
  float add = 0.0f;                      // added to every value (gemma norms: + 1)
};

// Matrices take the requested type. As llama.cpp's converter and quantizer, MoE routers and
// learned position tables stay float32: routing decisions flip on small errors.
bool is_matrix(const OutTensor& t) {
  return t.shape.size() >= 2 && t.name.ends_with(".weight") &&
         !t.name.ends_with("ffn_gate_inp.weight") && t.name != "position_embd.weight";
}

// "blk.N.ffn_gate.E.weight" -> ("blk.N.ffn_gate", E), as io/ names HF's expert tensors.
std::optional<std::pair<std::string, int64_t>> split_expert_name(const std::string& name) {
  if (!name.starts_with("blk.") || !name.ends_with(".weight")) return std::nullopt;
  const std::string base = name.substr(0, name.size() - 7);  // drop ".weight"
  const size_t dot = base.rfind('.');
  if (dot == std::string::npos || dot + 1 == base.size()) return std::nullopt;
  int64_t e = 0;
  for (size_t i = dot + 1; i < base.size(); ++i) {
    if (base[i] < '0' || base[i] > '9') return std::nullopt;
    e = e * 10 + (base[i] - '0');
  }
  const std::string kind = base.substr(0, dot);
  for (std::string_view k : {".ffn_gate", ".ffn_up", ".ffn_down"}) {
    if (kind.ends_with(k)) return std::pair{kind, e};
  }
  return std::nullopt;
}

// What llama.cpp's converter writes for `spec`, tensor by tensor.
std::vector<OutTensor> plan_tensors(const ModelSpec& spec) {
  const HyperParams& hp = spec.hparams;
  const bool from_hf = spec.format == ModelFormat::kHfFolder;
  const bool permute_qk = spec.architecture == "llama" && from_hf;
  const bool gemma = spec.architecture == "gemma2" || spec.architecture == "gemma3";
  std::vector<OutTensor> out;
  for (const TensorInfo& t : spec.tensors) {
    // GPT-2's causal-mask buffers are not weights (llama.cpp drops them too).
    if (t.source_name.ends_with(".attn.bias") || t.source_name.ends_with(".attn.masked_bias")) {
      continue;
    }
    if (auto expert = split_expert_name(t.name)) {
      if (expert->second != 0) continue;  // stacked with expert 0
      if (hp.n_experts <= 0) {
        fail(ErrorCode::kCorruption, "{}: expert tensor '{}' but no expert count", spec.path,
             t.name);
      }
      OutTensor o{expert->first + "_exps.weight", {hp.n_experts}, {}, {}, 0.0f};
      o.shape.insert(o.shape.end(), t.shape.begin(), t.shape.end());
      for (int64_t e = 0; e < hp.n_experts; ++e) {
        const std::string name = fmt::format("{}.{}.weight", expert->first, e);
        const TensorInfo& part = spec.require(name);
        if (part.shape != t.shape) {
          fail(ErrorCode::kCorruption, "{}: expert tensor '{}' has shape {}, expert 0 has {}",
               spec.path, name, shape_to_string(part.shape), shape_to_string(t.shape));
        }
        o.parts.push_back(&part);
      }
      out.push_back(std::move(o));
      continue;
    }
    OutTensor o{t.name, t.shape, {&t}, {}, 0.0f};
    if (permute_qk && (t.name.ends_with("attn_q.weight") || t.name.ends_with("attn_k.weight"))) {
      const int64_t heads = t.name.ends_with("attn_q.weight") ? hp.n_heads : hp.n_kv_heads;
      o.order = llama_qk_row_order(t.shape[0], heads);
    }
    // llama.cpp stores Gemma's RMSNorm weights as 1 + w (HF scales by 1 + weight).
    if (gemma && from_hf && t.name.ends_with("norm.weight")) o.add = 1.0f;
    out.push_back(std::move(o));
  }
  // llama.cpp's GPT-2 loader wants output.weight; its converter duplicates the tied wte.
  if (spec.architecture == "gpt2" && spec.find("output.weight") == nullptr) {
    const TensorInfo& embd = spec.require("token_embd.weight");
    out.push_back(OutTensor{"output.weight", embd.shape, {&embd}, {}, 0.0f});
  }
  return out;
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
  const bool gemma = a == "gemma2" || a == "gemma3";
  if (gemma) {
    // llama.cpp's Gemma converters always write the head size.
    u32("attention.key_length", hp.head_dim);
    u32("attention.value_length", hp.head_dim);
  }
  if (a == "gpt2") {
    // LayerNorm, learned positions: llama.cpp reads attention.layer_norm_epsilon, no rope keys.
    f32("attention.layer_norm_epsilon", hp.norm_eps);
  } else {
    u32("rope.dimension_count", hp.rope_dims > 0 ? hp.rope_dims : hp.head_dim);
    f32("rope.freq_base", hp.rope_theta);
    f32("attention.layer_norm_rms_epsilon", hp.norm_eps);
  }
  if (hp.rope_scaling.type == "linear") {
    w.set(a + ".rope.scaling.type", GgufValue("linear"));
    f32("rope.scaling.factor", hp.rope_scaling.factor);
  }
  if (a == "phi3") {
    // llama.cpp requires the key for phi3 and reads 0 as "no sliding window" (Phi-4).
    w.set(a + ".attention.sliding_window", GgufValue(static_cast<uint32_t>(hp.sliding_window)));
  } else {
    u32("attention.sliding_window", hp.sliding_window);
  }
  if (gemma) {
    f32("attn_logit_softcapping", hp.attn_logit_softcap);
    f32("final_logit_softcapping", hp.final_logit_softcap);
    if (a == "gemma3") f32("rope.freq_base_swa", hp.rope_local_theta);
    // Per layer, true = sliding window (newer llama.cpp's sliding_window_pattern array; older
    // ones fall back to their fixed pattern, which the configs we know follow).
    if (static_cast<int64_t>(hp.layer_types.size()) == hp.n_layers && hp.n_layers > 0) {
      std::vector<GgufValue> sliding;
      for (const std::string& t : hp.layer_types) {
        sliding.emplace_back(t == "sliding_attention");
      }
      w.set(a + ".attention.sliding_window_pattern",
            GgufValue::array(GgufType::kBool, std::move(sliding)));
    } else if (hp.sliding_window_pattern > 0) {
      u32("attention.sliding_window_pattern", hp.sliding_window_pattern);
    }
    // llama.cpp derives gemma's attention scale from the model size; the general key keeps
    // query_pre_attn_scalar when it is not head_dim.
    if (hp.query_pre_attn_scalar > 0 &&
        hp.query_pre_attn_scalar != static_cast<double>(hp.head_dim)) {
      f32("attention.scale", 1.0 / std::sqrt(hp.query_pre_attn_scalar));
    }
  }
  u32("expert_count", hp.n_experts);
  u32("expert_used_count", hp.n_experts_used);
  if (hp.n_experts > 0) {
    u32("expert_feed_forward_length", hp.expert_ffn_size);
    w.set(a + ".expert_weights_norm", GgufValue(hp.expert_norm_topk));
  }
}

ConvertReport convert_to_gguf(const ModelSpec& spec, const std::string& out,
                              const ConvertOptions& options) {
  static const std::string_view kSupported[] = {"llama",  "qwen2",  "qwen3", "qwen3moe",
                                                "gemma2", "gemma3", "phi3",  "gpt2"};
  bool supported = false;
  for (std::string_view s : kSupported) supported |= spec.architecture == s;
  if (!supported) {
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
  const std::vector<OutTensor> plan = plan_tensors(spec);
  std::vector<std::vector<uint8_t>> storage;  // converted bytes live until write()
  storage.reserve(plan.size() + 1);
  int64_t source_bytes = 0;
  for (const OutTensor& t : plan) {
    for (const TensorInfo* part : t.parts) source_bytes += static_cast<int64_t>(part->n_bytes);
  }
  Progress progress(fmt::format("convert {} tensors to {}", plan.size(), dtype_name(options.type)),
                    source_bytes, Progress::Unit::kBytes, !options.progress);

  for (const OutTensor& t : plan) {
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < t.shape.size(); ++i) rows *= t.shape[i];
    const int64_t part_rows = rows / static_cast<int64_t>(t.parts.size());
    DType target = is_matrix(t) ? fallback_type(options.type, cols) : DType::kF32;
    if (is_matrix(t) && target != options.type) ++report.n_fallback;
    for (const TensorInfo* part : t.parts) {
      if (!can_dequantize(part->dtype)) {
        fail(ErrorCode::kUnsupported, "{}: tensor '{}' has type {}, which loom cannot convert",
             spec.path, part->name, dtype_name(part->dtype));
      }
    }
    const uint64_t dst_row = *row_bytes(target, cols);
    std::vector<uint8_t>& dst = storage.emplace_back(dst_row * rows);
    pool.parallel_for(rows, [&](int64_t b, int64_t e, int) {
      std::vector<float> buf(cols);
      for (int64_t r = b; r < e; ++r) {
        const TensorInfo& part = *t.parts[r / part_rows];
        const int64_t pr = r % part_rows;
        const int64_t s = t.order.empty() ? pr : t.order[pr];
        dequantize_row(part.dtype, part.data + s * *row_bytes(part.dtype, cols), buf.data(), cols);
        if (t.add != 0.0f) {
          for (float& v : buf) v += t.add;
        }
        quantize_row(target, buf.data(), dst.data() + r * dst_row, cols);
      }
    });
    std::vector<uint64_t> ne(t.shape.rbegin(), t.shape.rend());
    w.add_tensor(t.name, target, ne, dst.data(), dst.size());
    ++report.n_tensors;
    report.bytes += dst.size();
    for (const TensorInfo* part : t.parts) progress.add(static_cast<int64_t>(part->n_bytes));
  }
  progress.finish();

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
