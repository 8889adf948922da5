#include "backend/communicator.h"

#include <algorithm>
#include <barrier>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "core/error.h"

namespace loom {

namespace {

// What the ranks of a local group share: one slot per rank for the buffer it contributes,
// and a barrier per phase.
struct LocalGroupState {
  explicit LocalGroupState(int world)
      : slots(world), sync(world), mailboxes(static_cast<size_t>(world) * world) {}
  std::vector<std::span<const float>> slots;
  std::span<std::byte> bytes;  // broadcast: the root's buffer
  std::barrier<> sync;
  // send/recv: a queue of messages per (from, to), index from * world + to.
  std::mutex mail_mutex;
  std::condition_variable mail_cv;
  std::vector<std::deque<std::vector<float>>> mailboxes;
};

class LocalCommunicator final : public Communicator {
 public:
  LocalCommunicator(std::shared_ptr<LocalGroupState> state, int rank)
      : state_(std::move(state)), rank_(rank) {}
  int rank() const override { return rank_; }
  int world() const override { return static_cast<int>(state_->slots.size()); }

  void all_reduce_sum(std::span<float> data) override {
    if (world() == 1) return;
    publish(data);
    // Every rank sums the same buffers in the same (rank) order into its own scratch, then,
    // once all have read, overwrites its own buffer.
    sum_.assign(data.size(), 0.0f);
    for (const std::span<const float>& s : state_->slots) {
      LOOM_ASSERT(s.size() == data.size());
      for (size_t i = 0; i < sum_.size(); ++i) sum_[i] += s[i];
    }
    state_->sync.arrive_and_wait();
    std::copy(sum_.begin(), sum_.end(), data.begin());
  }

  void all_gather(std::span<const float> in, std::span<float> out) override {
    LOOM_ASSERT(out.size() == in.size() * state_->slots.size());
    if (world() == 1) {
      std::copy(in.begin(), in.end(), out.begin());
      return;
    }
    publish(in);
    for (size_t r = 0; r < state_->slots.size(); ++r) {
      LOOM_ASSERT(state_->slots[r].size() == in.size());
      std::copy(state_->slots[r].begin(), state_->slots[r].end(), out.begin() + r * in.size());
    }
    state_->sync.arrive_and_wait();  // nobody reuses its input while others read it
  }

  void send(std::span<const float> data, int to) override {
    LOOM_ASSERT(to >= 0 && to < world() && to != rank_);
    {
      std::lock_guard lock(state_->mail_mutex);
      state_->mailboxes[static_cast<size_t>(rank_ * world() + to)].emplace_back(data.begin(),
                                                                                data.end());
    }
    state_->mail_cv.notify_all();
  }

  void recv(std::span<float> data, int from) override {
    LOOM_ASSERT(from >= 0 && from < world() && from != rank_);
    std::unique_lock lock(state_->mail_mutex);
    auto& box = state_->mailboxes[static_cast<size_t>(from * world() + rank_)];
    state_->mail_cv.wait(lock, [&] { return !box.empty(); });
    LOOM_ASSERT(box.front().size() == data.size());
    std::copy(box.front().begin(), box.front().end(), data.begin());
    box.pop_front();
  }

  void broadcast(std::span<std::byte> data, int root) override {
    LOOM_ASSERT(root >= 0 && root < world());
    if (world() == 1) return;
    if (rank_ == root) state_->bytes = data;
    state_->sync.arrive_and_wait();
    if (rank_ != root) {
      LOOM_ASSERT(state_->bytes.size() == data.size());
      std::copy(state_->bytes.begin(), state_->bytes.end(), data.begin());
    }
    state_->sync.arrive_and_wait();  // the root's buffer stays put until every rank has it
  }

 private:
  void publish(std::span<const float> data) {
    state_->slots[static_cast<size_t>(rank_)] = data;
    state_->sync.arrive_and_wait();
  }

  std::shared_ptr<LocalGroupState> state_;
  int rank_;
  std::vector<float> sum_;
};

}  // namespace

Part split_evenly(int64_t n, int world, int rank, int64_t align) {
  LOOM_ASSERT(n >= 0 && world >= 1 && rank >= 0 && rank < world && align >= 1);
  const int64_t units = (n + align - 1) / align;
  const auto edge = [&](int64_t r) { return std::min(n, units * r / world * align); };
  const int64_t first = edge(rank);
  return {first, edge(rank + 1) - first};
}

std::vector<std::shared_ptr<Communicator>> make_local_group(int world) {
  if (world < 1) fail(ErrorCode::kInvalidArgument, "a group of {} ranks", world);
  auto state = std::make_shared<LocalGroupState>(world);
  std::vector<std::shared_ptr<Communicator>> out;
  for (int r = 0; r < world; ++r) out.push_back(std::make_shared<LocalCommunicator>(state, r));
  return out;
}

}  // namespace loom
