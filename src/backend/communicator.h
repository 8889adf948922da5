// Communicator — the collectives of a tensor-parallel group: `world` ranks, each running the
// same model on its shard of the weights, exchanging activations at the points where the split
// rejoins (after the attention output and the MLP down projection). A backend takes one in
// BackendOptions and offers the collectives as ops (Backend::all_reduce, all_gather).
// Implementations: make_local_group (ranks are threads of one process, the exchange done in
// memory: tests and a single machine's split) and the MPI world of `mpirun -np N loom ...`
// (process_group.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace loom {

// Part `rank` of `n` items split over `world` ranks in order, as evenly as possible with every
// boundary but the last at a multiple of `align` (quantized blocks): [first, first + count).
// Ranks past the last whole unit get count 0.
struct Part {
  int64_t first = 0;
  int64_t count = 0;
};
Part split_evenly(int64_t n, int world, int rank, int64_t align = 1);

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // Every rank passes n floats; each gets the sum over ranks, added in rank order, so every
  // rank holds the same bits.
  virtual void all_reduce_sum(std::span<float> data) = 0;
  // Every rank passes n floats; `out` (world * n) gets rank 0's, then rank 1's, ...
  virtual void all_gather(std::span<const float> in, std::span<float> out) = 0;
  // Rank `root`'s bytes reach every rank's `data` (the same size on every rank).
  virtual void broadcast(std::span<std::byte> data, int root) = 0;
  // Point to point (pipeline stages): `data` to rank `to`, which receives it with recv(from
  // this rank) into a buffer of the same size. Messages between two ranks arrive in order.
  virtual void send(std::span<const float> data, int to) = 0;
  virtual void recv(std::span<float> data, int from) = 0;
};

// `world` communicators (rank i at index i) for threads of one process. Each collective is a
// rendezvous: every rank must call it, in the same order, from its own thread.
std::vector<std::shared_ptr<Communicator>> make_local_group(int world);

}  // namespace loom
