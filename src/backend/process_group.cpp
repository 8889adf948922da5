#include "backend/process_group.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include "core/error.h"

#ifdef LOOM_HAVE_MPI
#include <mpi.h>
#endif

namespace loom {

namespace {

struct GroupState {
  std::shared_ptr<Communicator> comm;
  int stages = 1;                         // --pp
  std::map<int, PipelineLayout> layouts;  // made so far, by stages
  int rank = 0;
  int world = 1;
  int local = 1;
  bool mpi = false;
};

GroupState& state() {
  static GroupState s;
  return s;
}

// The launcher's word for how many processes it started, or 0 when none started this one.
int launched_world() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    if (const char* v = std::getenv(var)) return std::max(1, std::atoi(v));
  }
  return 0;
}

std::atomic<uint64_t> g_bytes_sent{0};

#ifdef LOOM_HAVE_MPI
// MPI counts in int: larger buffers go in pieces.
constexpr size_t kMaxCount = INT_MAX / 2;

// An MPI communicator as a Communicator. The all-reduce leaves the same bits on every rank (each
// rank runs the next layer from its own copy): over two ranks it gathers both parts and adds
// them in rank order on each (as the local group does, so such a split over processes equals
// the same split over threads); over more, large buffers are reduce-scattered (each block summed
// once on its owner) and all-gathered (the owners' bits to all). MPI_Allreduce does not promise
// equal bits.
class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, int rank, int world) : comm_(comm), rank_(rank), world_(world) {}
  int rank() const override { return rank_; }
  int world() const override { return world_; }

  void all_reduce_sum(std::span<float> data) override {
    if (world_ == 1 || data.empty()) return;
    const size_t n = data.size();
    if (world_ > 2 && data.size_bytes() >= kScatterBytes) {
      // Reduce-scatter, then all-gather: each rank's link carries 2 (N - 1) / N of the buffer
      // instead of the gather's N - 1, at twice the messages, which pays for large buffers
      // (prefill) and not for a decode step's rows. Each block is summed once, on its owner, and
      // the owner's bits reach every rank, so the ranks still agree bit for bit.
      const size_t block = (n + world_ - 1) / world_;
      if (block * world_ > kMaxCount) {
        fail(ErrorCode::kOutOfRange, "an all-reduce of {} values (at most {})", n, kMaxCount);
      }
      gathered_.assign(block * world_, 0.0f);
      std::copy(data.begin(), data.end(), gathered_.begin());
      block_.resize(block);
      g_bytes_sent += data.size_bytes();
      MPI_Reduce_scatter_block(gathered_.data(), block_.data(), static_cast<int>(block), MPI_FLOAT,
                               MPI_SUM, comm_);
      MPI_Allgather(block_.data(), static_cast<int>(block), MPI_FLOAT, gathered_.data(),
                    static_cast<int>(block), MPI_FLOAT, comm_);
      std::copy_n(gathered_.begin(), n, data.begin());
      return;
    }
    // Two ranks, or a small buffer: one exchange, each rank adds all parts in rank order.
    gathered_.resize(n * static_cast<size_t>(world_));
    all_gather(data, gathered_);
    std::fill(data.begin(), data.end(), 0.0f);
    for (int r = 0; r < world_; ++r) {
      const float* s = gathered_.data() + static_cast<size_t>(r) * n;
      for (size_t i = 0; i < n; ++i) data[i] += s[i];
    }
  }

  void all_gather(std::span<const float> in, std::span<float> out) override {
    LOOM_ASSERT(out.size() == in.size() * static_cast<size_t>(world_));
    if (in.size() > kMaxCount) {
      fail(ErrorCode::kOutOfRange, "an all-gather of {} values per rank (at most {})", in.size(),
           kMaxCount);
    }
    const int n = static_cast<int>(in.size());
    g_bytes_sent += in.size_bytes();
    MPI_Allgather(in.data(), n, MPI_FLOAT, out.data(), n, MPI_FLOAT, comm_);
  }

  void broadcast(std::span<std::byte> data, int root) override {
    if (root == rank_) g_bytes_sent += data.size();
    for (size_t at = 0; at < data.size(); at += kMaxCount) {
      const int n = static_cast<int>(std::min(kMaxCount, data.size() - at));
      MPI_Bcast(data.data() + at, n, MPI_BYTE, root, comm_);
    }
  }

  void send(std::span<const float> data, int to) override {
    g_bytes_sent += data.size_bytes();
    for (size_t at = 0; at < data.size(); at += kMaxCount) {
      const int n = static_cast<int>(std::min(kMaxCount, data.size() - at));
      MPI_Send(data.data() + at, n, MPI_FLOAT, to, kTag, comm_);
    }
  }

  void recv(std::span<float> data, int from) override {
    for (size_t at = 0; at < data.size(); at += kMaxCount) {
      const int n = static_cast<int>(std::min(kMaxCount, data.size() - at));
      MPI_Recv(data.data() + at, n, MPI_FLOAT, from, kTag, comm_, MPI_STATUS_IGNORE);
    }
  }

  // The ranks of this group with the same `color` (e.g. one pipeline stage), ordered by rank.
  std::shared_ptr<Communicator> split(int color) {
    MPI_Comm sub;
    MPI_Comm_split(comm_, color, rank_, &sub);
    int r = 0, w = 1;
    MPI_Comm_rank(sub, &r);
    MPI_Comm_size(sub, &w);
    return std::make_shared<MpiCommunicator>(sub, r, w);
  }

 private:
  static constexpr int kTag = 7;
  // From this size an all-reduce over more than two ranks reduce-scatters (above).
  static constexpr size_t kScatterBytes = 64 << 10;
  MPI_Comm comm_;
  int rank_, world_;
  std::vector<float> gathered_, block_;
};
#endif

}  // namespace

void init_process_group(int& argc, char**& argv) {
  const int launched = launched_world();
  if (launched == 0) return;
#ifdef LOOM_HAVE_MPI
  GroupState& s = state();
  int provided = 0;
  // The collectives run on whichever thread runs the model (the server's engine thread), one
  // at a time.
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  s.mpi = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &s.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &s.world);
  if (provided < MPI_THREAD_SERIALIZED) {
    fail(ErrorCode::kUnsupported, "this MPI library offers thread level {}, loom needs {}",
         provided, static_cast<int>(MPI_THREAD_SERIALIZED));
  }
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, s.rank, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &s.local);
  MPI_Comm_free(&local);
  if (s.world > 1) s.comm = std::make_shared<MpiCommunicator>(MPI_COMM_WORLD, s.rank, s.world);
#else
  (void)argc;
  (void)argv;
  fail(ErrorCode::kUnsupported,
       "started by an MPI launcher ({} processes), but this loom was built without MPI "
       "(install libopenmpi-dev and rebuild)",
       launched);
#endif
}

std::shared_ptr<Communicator> process_group() {
  return state().comm;
}

uint64_t process_bytes_sent() {
  return g_bytes_sent.load();
}

void set_pipeline_stages(int stages) {
  state().stages = stages;
}
int pipeline_stages() {
  return state().stages;
}

PipelineLayout pipeline_layout(int stages) {
  GroupState& s = state();
  if (stages < 1 || s.world % stages != 0) {
    fail(ErrorCode::kInvalidArgument,
         "--pp {}: {} ranks do not split into {} pipeline stages of equal size", stages, s.world,
         stages);
  }
  if (auto it = s.layouts.find(stages); it != s.layouts.end()) return it->second;
  PipelineLayout p;
  const int per_stage = s.world / stages;
  p.stages = stages;
  p.stage = s.rank / per_stage;
  p.rank = s.rank % per_stage;
  p.world = per_stage;
  if (stages == 1) {
    p.stage_group = s.comm;
  } else if (per_stage > 1) {
#ifdef LOOM_HAVE_MPI
    p.stage_group = static_cast<MpiCommunicator&>(*s.comm).split(p.stage);
#endif
  }
  s.layouts[stages] = p;
  return p;
}
int process_rank() {
  return state().rank;
}
int process_world() {
  return state().world;
}
int local_ranks() {
  return state().local;
}

uint64_t agree_on_seed(const std::optional<uint64_t>& seed) {
  if (seed) return *seed;
  uint64_t s = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  if (const auto& comm = state().comm) {
    comm->broadcast(std::as_writable_bytes(std::span<uint64_t>(&s, 1)), 0);
  }
  return s;
}

void check_same_on_every_rank(uint64_t value, const char* what) {
  const auto& comm = state().comm;
  if (!comm) return;
  uint64_t root = value;
  comm->broadcast(std::as_writable_bytes(std::span<uint64_t>(&root, 1)), 0);
  if (root != value) {
    fail(ErrorCode::kInvalidArgument, "{} is not the same as on rank 0", what);
  }
}

void abort_process_group(int exit_code) {
#ifdef LOOM_HAVE_MPI
  if (state().mpi && state().world > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
#else
  (void)exit_code;
#endif
}

void finalize_process_group() {
#ifdef LOOM_HAVE_MPI
  GroupState& s = state();
  if (!s.mpi) return;
  s.comm.reset();
  s.mpi = false;
  MPI_Finalize();
#endif
}

}  // namespace loom
