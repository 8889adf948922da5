#include "tokenizer/post_processors.h"

namespace loom::tokenizer {

void TemplatePostProcessor::process(std::vector<int32_t>& ids, bool add_special_tokens) const {
  if (!add_special_tokens) return;
  std::vector<int32_t> out;
  out.reserve(ids.size() + 4);
  for (const Item& item : items_) {
    if (item.is_sequence) {
      out.insert(out.end(), ids.begin(), ids.end());
    } else {
      out.insert(out.end(), item.ids.begin(), item.ids.end());
    }
  }
  ids = std::move(out);
}

std::vector<int32_t> TemplatePostProcessor::prefix_ids() const {
  std::vector<int32_t> out;
  for (const Item& item : items_) {
    if (item.is_sequence) break;
    out.insert(out.end(), item.ids.begin(), item.ids.end());
  }
  return out;
}

void WrapPostProcessor::process(std::vector<int32_t>& ids, bool add_special_tokens) const {
  if (!add_special_tokens) return;
  ids.insert(ids.begin(), first_);
  ids.push_back(last_);
}

void SequencePostProcessor::process(std::vector<int32_t>& ids, bool add_special_tokens) const {
  for (const auto& child : children_) child->process(ids, add_special_tokens);
}

std::vector<int32_t> SequencePostProcessor::prefix_ids() const {
  for (const auto& child : children_) {
    auto ids = child->prefix_ids();
    if (!ids.empty()) return ids;
  }
  return {};
}

}  // namespace loom::tokenizer
