#include "tokenizer/hf_json_tables.h"

#include <algorithm>
#include <cmath>

namespace loom::tokenizer {

namespace {

using json = nlohmann::json;

// nlohmann's SAX events, building the document the way json::parse does (last duplicate key
// wins) except inside the two tables. Returning false stops the parse: the file is irregular.
class TableReader {
 public:
  explicit TableReader(TokenizerJson& out) : out_(out) {}

  bool null() { return value(json(nullptr)); }
  bool boolean(bool v) { return value(json(v)); }
  bool number_integer(json::number_integer_t v) {
    if (mode_ == Mode::kVocab) return vocab_id(v >= 0 && v <= INT32_MAX, v);
    return value(json(v));
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (mode_ == Mode::kVocab) return vocab_id(v <= INT32_MAX, static_cast<int64_t>(v));
    return value(json(v));
  }
  bool number_float(json::number_float_t v, const json::string_t&) {
    // json::parse refuses a number too large for a double (out_of_range 406); so does this.
    return std::isfinite(v) && value(json(v));
  }
  bool string(json::string_t& s) {
    if (mode_ == Mode::kMerges) {
      // Legacy form "left right": exactly one space.
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) return false;
      out_.tables.merges->emplace_back(s.substr(0, space), s.substr(space + 1));
      return true;
    }
    if (mode_ == Mode::kPair) {
      if (pair_size_ == 2) return false;
      (pair_size_++ == 0 ? left_ : right_) = std::move(s);
      return true;
    }
    return value(json(std::move(s)));
  }
  bool binary(json::binary_t&) { return false; }  // the JSON parser never produces one

  bool start_object(size_t) {
    if (mode_ != Mode::kNone) return false;
    if (in_model() && key_ == "vocab") return begin_table(out_.tables.vocab, Mode::kVocab);
    const bool is_model = stack_.size() == 1 && stack_[0]->is_object() && key_ == "model";
    if (is_model && model_) return false;  // a second "model": the first one's tables are stale
    json* p = place(json::object());
    if (is_model) model_ = p;
    stack_.push_back(p);
    return true;
  }
  bool key(json::string_t& k) {
    if (mode_ == Mode::kNone) {
      // A table seen again, as anything, would replace the one already taken out.
      if (in_model() &&
          ((k == "vocab" && out_.tables.vocab) || (k == "merges" && out_.tables.merges))) {
        return false;
      }
      if (stack_.size() == 1 && model_ && k == "model") return false;
    }
    key_ = std::move(k);
    return true;
  }
  bool end_object() {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kNone;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool start_array(size_t) {
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kPair;
      pair_size_ = 0;
      return true;
    }
    if (mode_ != Mode::kNone) return false;
    if (in_model() && key_ == "merges") return begin_table(out_.tables.merges, Mode::kMerges);
    stack_.push_back(place(json::array()));
    return true;
  }
  bool end_array() {
    if (mode_ == Mode::kPair) {
      if (pair_size_ != 2) return false;
      out_.tables.merges->emplace_back(std::move(left_), std::move(right_));
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kNone;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  enum class Mode { kNone, kVocab, kMerges, kPair };

  bool in_model() const { return model_ && stack_.size() == 2 && stack_[1] == model_; }

  // Takes `table` out of the document, leaving an empty one of its kind in its place; false
  // when the file gives it twice.
  template <typename Table>
  bool begin_table(std::optional<Table>& table, Mode mode) {
    if (table) return false;
    place(mode == Mode::kVocab ? json::object() : json::array());
    table.emplace();
    mode_ = mode;
    return true;
  }

  bool vocab_id(bool in_range, int64_t id) {
    if (!in_range) return false;
    out_.tables.vocab->emplace_back(std::move(key_), static_cast<int32_t>(id));
    return true;
  }

  bool value(json v) {
    if (mode_ != Mode::kNone) return false;  // a table entry of an unexpected kind
    place(std::move(v));
    return true;
  }

  // Where the next value goes: the root, the end of the open array, or key_ of the open
  // object. Containers are placed empty and filled through the returned pointer, which stays
  // valid while they are open (their parent does not change meanwhile).
  json* place(json v) {
    if (stack_.empty()) {
      out_.doc = std::move(v);
      return &out_.doc;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    json& slot = top[key_];
    slot = std::move(v);
    return &slot;
  }

  TokenizerJson& out_;
  std::vector<json*> stack_;
  json* model_ = nullptr;
  std::string key_, left_, right_;
  size_t pair_size_ = 0;
  Mode mode_ = Mode::kNone;
};

}  // namespace

std::optional<TokenizerJson> read_tokenizer_json(std::string_view text) {
  TokenizerJson out;
  TableReader reader(out);
  try {
    if (!json::sax_parse(text, &reader)) return std::nullopt;
  } catch (const json::exception&) {
    return std::nullopt;  // the plain parse reports it
  }
  if (out.tables.vocab) {
    // The order, and the last-wins duplicates, of the std::map the plain document uses.
    auto& v = *out.tables.vocab;
    std::stable_sort(v.begin(), v.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    size_t kept = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i + 1 < v.size() && v[i + 1].first == v[i].first) continue;
      if (kept != i) v[kept] = std::move(v[i]);
      ++kept;
    }
    v.resize(kept);
  }
  return out;
}

}  // namespace loom::tokenizer
