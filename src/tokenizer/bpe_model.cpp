#include "tokenizer/bpe_model.h"

#include <fmt/format.h>

#include <atomic>
#include <queue>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {

namespace {

// Per-thread cache of word -> ids, as HF does: encoders on different threads never contend,
// and a thread serving a few tokenizers keeps one cache per tokenizer (models are told apart
// by a serial number, never by address, so a new model at a freed address starts cold).
struct WordCache {
  static constexpr size_t kSlots = 4;
  static constexpr size_t kMaxEntries = 1 << 15;
  static constexpr size_t kMaxWordBytes = 128;
  struct Slot {
    uint64_t owner = 0;
    StringMap<std::vector<int32_t>> map;
  };
  std::array<Slot, kSlots> slots;
  size_t next_victim = 0;

  StringMap<std::vector<int32_t>>& for_model(uint64_t serial) {
    for (Slot& slot : slots) {
      if (slot.owner == serial) return slot.map;
    }
    Slot& slot = slots[next_victim++ % kSlots];
    slot.owner = serial;
    slot.map.clear();
    return slot.map;
  }
};

thread_local WordCache tls_word_cache;
std::atomic<uint64_t> next_model_serial{1};

}  // namespace

BpeModel::BpeModel(Vocab vocab, const std::vector<BpeMerge>& merges, BpeOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)), serial_(next_model_serial++) {
  if (options_.unk_token) {
    unk_id_ = vocab_.find(*options_.unk_token);
    if (!unk_id_) {
      fail(ErrorCode::kCorruption, "unk_token '{}' is not in the vocab", *options_.unk_token);
    }
  }
  for (int b = 0; b < 256; ++b) {
    auto id = vocab_.find(fmt::format("<0x{:02X}>", b));
    byte_ids_[b] = id ? *id : -1;
  }
  merges_ = PairMap(merges.size());
  for (const BpeMerge& m : merges) {
    merges_.insert(m.left, m.right, {m.rank, m.result});
  }
}

std::vector<BpeMerge> resolve_bpe_merges(
    const Vocab& vocab, const std::vector<std::pair<std::string, std::string>>& merges,
    const std::string& continuing_subword_prefix) {
  std::vector<BpeMerge> out;
  out.reserve(merges.size());
  size_t prefix_len = continuing_subword_prefix.size();
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto a_id = vocab.find(a);
    auto b_id = vocab.find(b);
    if (!a_id || !b_id) {
      fail(ErrorCode::kCorruption, "merges[{}] ('{} {}'): token '{}' is not in the vocab", rank, a,
           b, a_id ? b : a);
    }
    // With a continuing-subword prefix, the right part's prefix disappears in the merge.
    std::string merged = a + (b.size() >= prefix_len ? b.substr(prefix_len) : b);
    auto new_id = vocab.find(merged);
    if (!new_id) {
      fail(ErrorCode::kCorruption, "merges[{}] ('{} {}'): merged token '{}' is not in the vocab",
           rank, a, b, merged);
    }
    out.push_back({*a_id, *b_id, *new_id, static_cast<uint32_t>(rank)});
  }
  return out;
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& ids) const {
  if (piece.empty()) return;
  if (piece.size() > kLongWordBytes && options_.chunk_long_words &&
      options_.continuing_subword_prefix.empty() && options_.end_of_word_suffix.empty() &&
      !(options_.ignore_merges && vocab_.find(piece))) {
    tokenize_long_word(piece, ids);
    return;
  }
  tokenize_word(piece, ids);
}

void BpeModel::tokenize_word(std::string_view piece, std::vector<int32_t>& ids) const {
  // The small per-thread cache is checked first: it is hot, the vocab map is not.
  auto& cache = tls_word_cache.for_model(serial_);
  if (auto it = cache.find(piece); it != cache.end()) {
    ids.insert(ids.end(), it->second.begin(), it->second.end());
    return;
  }
  size_t start = ids.size();
  std::optional<int32_t> whole;
  if (options_.ignore_merges) whole = vocab_.find(piece);
  if (whole) {
    ids.push_back(*whole);
  } else {
    merge_word(piece, ids);
  }
  if (piece.size() <= WordCache::kMaxWordBytes && cache.size() < WordCache::kMaxEntries) {
    cache.emplace(std::string(piece), std::vector<int32_t>(ids.begin() + start, ids.end()));
  }
}

void BpeModel::tokenize_long_word(std::string_view word, std::vector<int32_t>& ids) const {
  std::call_once(boundaries_once_,
                 [&] { boundaries_ = std::make_unique<MergeBoundaryFilter>(vocab_); });
  // A cut between two characters is safe when both are tokens on their own (so neither
  // becomes unk or byte-fallback pieces, which fuse across characters) and no token contains
  // the pair. Chunks are cut at the first safe point past kChunkBytes.
  size_t chunk_start = 0;
  size_t pos = 0;
  char32_t prev = 0;
  bool prev_is_token = false;
  while (pos < word.size()) {
    size_t at = pos;
    char32_t c = next_code_point(word, pos);
    bool is_token = vocab_.find(word.substr(at, pos - at)).has_value();
    if (at - chunk_start >= kChunkBytes && prev_is_token && is_token &&
        !boundaries_->may_join(prev, c)) {
      tokenize_word(word.substr(chunk_start, at - chunk_start), ids);
      chunk_start = at;
    }
    prev = c;
    prev_is_token = is_token;
  }
  tokenize_word(word.substr(chunk_start), ids);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& ids) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto push = [&](int32_t id) {
    int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  };

  // Initial symbols: one per character (or per byte with byte_fallback), unknowns fused.
  std::optional<int32_t> pending_unk;
  std::string scratch;
  size_t pos = 0;
  while (pos < word.size()) {
    size_t begin = pos;
    pos += utf8_length(static_cast<unsigned char>(word[pos]));
    if (pos > word.size()) pos = word.size();
    std::string_view ch = word.substr(begin, pos - begin);
    std::string_view lookup = ch;
    bool first = begin == 0, last = pos == word.size();
    if ((!first && !options_.continuing_subword_prefix.empty()) ||
        (last && !options_.end_of_word_suffix.empty())) {
      scratch.clear();
      if (!first) scratch += options_.continuing_subword_prefix;
      scratch += ch;
      if (last) scratch += options_.end_of_word_suffix;
      lookup = scratch;
    }
    if (auto id = vocab_.find(lookup)) {
      if (pending_unk) push(*std::exchange(pending_unk, std::nullopt));
      push(*id);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (char b : lookup) all &= byte_ids_[static_cast<unsigned char>(b)] >= 0;
      if (all) {
        if (pending_unk) push(*std::exchange(pending_unk, std::nullopt));
        for (char b : lookup) push(byte_ids_[static_cast<unsigned char>(b)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk && !options_.fuse_unk) push(*pending_unk);
      pending_unk = *unk_id_;
    }
    // Without an unk token an unknown character is dropped, as in HF.
  }
  if (pending_unk) push(*pending_unk);
  if (symbols.empty()) return;
  symbols.back().next = -1;

  struct Candidate {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int32_t left) {
    int32_t right = symbols[left].next;
    if (right < 0) return;
    if (const PairMap::Value* m = merges_.find(symbols[left].id, symbols[right].id)) {
      queue.push({m->rank, left, m->result});
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);

  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Stale entry: the pair at this position changed since it was queued.
    const PairMap::Value* m = merges_.find(left.id, right.id);
    if (m == nullptr || m->result != top.new_id) continue;
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (const Symbol& s : symbols) {
    if (s.alive) ids.push_back(s.id);
  }
}

}  // namespace loom::tokenizer
