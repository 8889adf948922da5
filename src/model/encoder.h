// Encoder — a bidirectional model that turns a whole input into hidden states at once: text
// encoders (BERT) for embeddings, and vision towers (CLIP, SigLIP) for image features. Beside
// CausalLM, not under it: there is no KV cache, no positions beyond the input, no logits.
// An encoder runs one batch of equal-length inputs per call (text padded to the longest, with
// an attention mask; images resized to the tower's size), so the weights are read once per
// call. The model holds no per-input state.
// Thread-safety: encode calls come from one thread at a time (buffers are reused).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/model_spec.h"
#include "model/blocks.h"

namespace loom {

struct EncoderInfo {
  std::string architecture;  // bert, clip, siglip
  bool vision = false;
  int64_t hidden_size = 0;
  int64_t n_layers = 0;
  int64_t vocab_size = 0;        // text: token ids must be below this
  int64_t max_tokens = 0;        // text: the learned position table's length
  int64_t image_size = 0;        // vision: input height = width
  int64_t n_channels = 0;        // vision
  int64_t tokens_per_image = 0;  // vision: rows of last_hidden_state per image
};

// n_seqs sequences, each padded to seq_len: ids and mask are [n_seqs, seq_len] row-major;
// mask is 1 for real tokens, 0 for padding (HF's attention_mask).
struct TextBatch {
  int64_t n_seqs = 0, seq_len = 0;
  std::vector<int32_t> ids, mask;
  // Pads `seqs` to the longest with `pad_id`.
  static TextBatch from_sequences(const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id);
};

class Encoder {
 public:
  virtual ~Encoder() = default;
  const EncoderInfo& info() const { return info_; }

  // Text encoders: last_hidden_state [n_seqs * seq_len, hidden]. Throws kOutOfRange when an
  // id is outside the vocabulary or a sequence is longer than max_tokens; kUnsupported for a
  // vision tower.
  virtual void encode(const TextBatch& batch, Activations& last_hidden);
  // Vision towers: pixels is [n_images, channels, image_size, image_size] (NCHW, already
  // normalised); last_hidden gets [n_images * tokens_per_image, hidden] and pooled
  // [n_images, hidden] (HF's pooler_output). kUnsupported for a text encoder.
  virtual void encode_images(std::span<const float> pixels, int64_t n_images,
                             Activations& last_hidden, Activations& pooled);

 protected:
  EncoderInfo info_;
};

// True for the architectures load_encoder builds (bert, clip, siglip).
bool is_encoder_architecture(const std::string& architecture);
// Throws kUnsupported for an architecture that is not an encoder and kCorruption naming the
// tensor when one is missing or mis-shaped.
std::unique_ptr<Encoder> load_encoder(const ModelSpec& spec, Backend& backend);

enum class Pooling { kMean, kCls };
// One vector per sequence: the mean of the unpadded rows (sentence-transformers' mean pooling:
// sum(h * mask) / sum(mask)) or the first row ([CLS]).
// `last_hidden` is the encoder's output downloaded to the host: [batch rows, cols].
std::vector<std::vector<float>> pool_hidden(std::span<const float> last_hidden, int64_t cols,
                                            const TextBatch& batch, Pooling pooling);
// v /= max(||v||_2, 1e-12) (torch.nn.functional.normalize).
void l2_normalize(std::span<float> v);

// Shared encoder block: out = Wo · softmax(q kᵀ scale + mask) v (+ bo) for the normalised input
// h over n_seqs equal-length sequences; the key mask as in Backend::encoder_attention. out may
// be h.
void encoder_attention_block(Backend& be, const AttentionWeights& W, const AttentionParams& p,
                             const Activations& h, int64_t n_seqs,
                             std::span<const int32_t> key_mask, BlockBuffers& buf,
                             Activations& out);

// The activation of a plain (ungated) MLP, HF's hidden_act.
enum class EncoderActivation { kGeluErf, kGeluTanh, kQuickGelu };
EncoderActivation parse_encoder_activation(const ModelSpec& spec);
void apply_activation(Backend& be, EncoderActivation act, Activations& x);

// Family builders (bert.cpp, vision.cpp).
std::unique_ptr<Encoder> make_bert(const ModelSpec& spec, Backend& backend);
std::unique_ptr<Encoder> make_vision_tower(const ModelSpec& spec, Backend& backend);

}  // namespace loom
