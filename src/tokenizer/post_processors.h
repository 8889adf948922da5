// Post-processors (HF `tokenizers` processors) for a single sequence: they add the model's
// special tokens (BOS, CLS/SEP, ...) when encode is asked to. Pair encoding is not used by
// loom and is not modelled.
//
// Ownership: a SequencePostProcessor owns its children. Thread-safety: immutable.
#pragma once

#include <memory>
#include <vector>

#include "tokenizer/pipeline.h"

namespace loom::tokenizer {

// HF TemplateProcessing, single template: a list of fixed special-token ids and the
// placeholder for the sequence.
class TemplatePostProcessor final : public PostProcessor {
 public:
  struct Item {
    bool is_sequence = false;
    std::vector<int32_t> ids;  // the special token's ids when !is_sequence
  };
  explicit TemplatePostProcessor(std::vector<Item> items) : items_(std::move(items)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override;
  std::vector<int32_t> prefix_ids() const override;

 private:
  std::vector<Item> items_;
};

// BertProcessing / RobertaProcessing for a single sequence: [first] A [last].
class WrapPostProcessor final : public PostProcessor {
 public:
  WrapPostProcessor(int32_t first, int32_t last) : first_(first), last_(last) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override;
  std::vector<int32_t> prefix_ids() const override { return {first_}; }

 private:
  int32_t first_, last_;
};

// ByteLevel post-processing only trims offsets, which loom does not track: ids pass through.
class IdentityPostProcessor final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
};

class SequencePostProcessor final : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> children)
      : children_(std::move(children)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override;
  std::vector<int32_t> prefix_ids() const override;

 private:
  std::vector<std::unique_ptr<PostProcessor>> children_;
};

}  // namespace loom::tokenizer
