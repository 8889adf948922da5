#include "engine/model_group.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>

#include "core/error.h"

namespace loom {

namespace {

// The fixed-size message every step starts with; the payload's size is in it.
enum : int64_t { kStop = 0, kForward = 1 };
struct Header {
  int64_t op = kStop;
  int64_t cache_id = 0, n_blocks = 0, block_size = 0, kv_dtype = 0;
  int64_t rows = 0, n_seqs = 0, n_table = 0, n_logit_rows = 0;
  int64_t n_rope = 0, rope_axes = 1, n_embedding_rows = 0, embedding_cols = 0;
  int64_t payload_bytes = 0;
};

void broadcast_header(Communicator& comm, Header& h) {
  comm.broadcast(std::as_writable_bytes(std::span<Header>(&h, 1)), 0);
}

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) { out_.clear(); }
  template <typename T>
  void put(std::span<const T> v) {
    const auto b = std::as_bytes(v);
    out_.insert(out_.end(), b.begin(), b.end());
  }

 private:
  std::vector<std::byte>& out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  template <typename T>
  std::vector<T> take(int64_t n) {
    const size_t bytes = static_cast<size_t>(n) * sizeof(T);
    if (n < 0 || at_ + bytes > in_.size()) {
      fail(ErrorCode::kInternal, "a group step of {} bytes is shorter than its header says",
           in_.size());
    }
    std::vector<T> v(static_cast<size_t>(n));
    if (bytes > 0)
      std::memcpy(v.data(), in_.data() + at_, bytes);  // (an empty vector's data() may be null)
    at_ += bytes;
    return v;
  }

 private:
  std::span<const std::byte> in_;
  size_t at_ = 0;
};

}  // namespace

GroupLeader::GroupLeader(CausalLM& model, Communicator& comm) : model_(model), comm_(comm) {
  LOOM_ASSERT(comm.rank() == 0);
  info_ = model.info();
}

GroupLeader::~GroupLeader() {
  stop();
}

void GroupLeader::stop() {
  if (stopped_) return;
  stopped_ = true;
  Header h;
  h.op = kStop;
  broadcast_header(comm_, h);
}

void GroupLeader::forward(const Batch& batch, KvCache& cache, Activations& logits) {
  LOOM_ASSERT(!stopped_);
  Header h;
  h.op = kForward;
  h.cache_id = static_cast<int64_t>(reinterpret_cast<uintptr_t>(&cache));
  h.n_blocks = cache.n_blocks();
  h.block_size = cache.block_size();
  h.kv_dtype = static_cast<int64_t>(cache.dtype());
  h.rows = batch.rows();
  h.n_seqs = static_cast<int64_t>(batch.seqs.size());
  h.n_logit_rows = static_cast<int64_t>(batch.logit_rows.size());
  h.n_rope = static_cast<int64_t>(batch.rope_positions.size());
  h.rope_axes = batch.rope_axes;
  h.n_embedding_rows = static_cast<int64_t>(batch.embedding_rows.size());
  Writer w(payload_);
  w.put<int32_t>(batch.tokens);
  w.put<int32_t>(batch.positions);
  for (const SeqSlice& s : batch.seqs) {
    const std::array<int64_t, 4> fields = {s.first_row, s.n_tokens, s.start_pos,
                                           static_cast<int64_t>(s.block_table.size())};
    w.put<int64_t>(fields);
    h.n_table += static_cast<int64_t>(s.block_table.size());
  }
  for (const SeqSlice& s : batch.seqs) w.put<int32_t>(s.block_table);
  w.put<int64_t>(batch.logit_rows);
  w.put<int32_t>(batch.rope_positions);
  w.put<int32_t>(batch.embedding_rows);
  if (batch.embeddings != nullptr) {
    h.embedding_cols = batch.embeddings->cols();
    const std::vector<float> e = model_.backend().download_all(*batch.embeddings);
    w.put<float>(e);
  }
  h.payload_bytes = static_cast<int64_t>(payload_.size());
  broadcast_header(comm_, h);
  comm_.broadcast(payload_, 0);
  model_.forward(batch, cache, logits);
}

void follow_group_leader(CausalLM& model, Communicator& comm) {
  LOOM_ASSERT(comm.rank() != 0);
  struct Cache {
    int64_t id = 0, n_blocks = 0, block_size = 0, dtype = 0;
    std::unique_ptr<KvCache> cache;
  };
  std::deque<Cache> caches;  // most recently made last
  constexpr size_t kMaxCaches = 4;
  std::vector<std::byte> payload;
  Activations logits, embeddings;
  for (;;) {
    Header h;
    broadcast_header(comm, h);
    if (h.op == kStop) return;
    payload.resize(static_cast<size_t>(h.payload_bytes));
    comm.broadcast(payload, 0);
    Reader r(payload);
    Batch batch;
    batch.tokens = r.take<int32_t>(h.rows);
    batch.positions = r.take<int32_t>(h.rows);
    const std::vector<int64_t> fields = r.take<int64_t>(4 * h.n_seqs);
    const std::vector<int32_t> tables = r.take<int32_t>(h.n_table);
    size_t at = 0;
    for (int64_t i = 0; i < h.n_seqs; ++i) {
      const int64_t* f = fields.data() + 4 * i;
      batch.seqs.push_back(
          {f[0], f[1], f[2],
           std::span<const int32_t>(tables.data() + at, static_cast<size_t>(f[3]))});
      at += static_cast<size_t>(f[3]);
    }
    batch.logit_rows = r.take<int64_t>(h.n_logit_rows);
    batch.rope_positions = r.take<int32_t>(h.n_rope);
    batch.rope_axes = h.rope_axes;
    batch.embedding_rows = r.take<int32_t>(h.n_embedding_rows);
    if (h.embedding_cols > 0) {
      const std::vector<float> e = r.take<float>(h.n_embedding_rows * h.embedding_cols);
      model.backend().upload(e, h.n_embedding_rows, h.embedding_cols, embeddings);
      batch.embeddings = &embeddings;
    }
    auto it = std::find_if(caches.begin(), caches.end(), [&](const Cache& c) {
      return c.id == h.cache_id && c.n_blocks == h.n_blocks && c.block_size == h.block_size &&
             c.dtype == h.kv_dtype;
    });
    if (it == caches.end()) {
      std::erase_if(caches, [&](const Cache& c) { return c.id == h.cache_id; });
      if (caches.size() == kMaxCaches) caches.pop_front();
      caches.push_back(
          {h.cache_id, h.n_blocks, h.block_size, h.kv_dtype,
           model.make_kv_cache(h.n_blocks, h.block_size, static_cast<DType>(h.kv_dtype))});
      it = caches.end() - 1;
    }
    model.forward(batch, *it->cache, logits);
  }
}

}  // namespace loom
