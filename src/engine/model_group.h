// A model split over a tensor-parallel group of processes (`mpirun -np N loom serve`), driven
// by rank 0. The scheduler, the HTTP server and sampling run on rank 0 only; GroupLeader stands
// for the model there and, before each forward pass, broadcasts the step (tokens, positions,
// sequences with their block tables, logit rows, rope positions, injected embeddings, and the
// KV cache's shape) to the other ranks, which run the same forward on their shards in
// follow_group_leader, each with its own KV cache of the same blocks. The collectives inside
// the forward then meet as they do when every rank runs the same command (loom run, logits).
#pragma once

#include <memory>

#include "backend/communicator.h"
#include "model/model.h"

namespace loom {

class GroupLeader final : public CausalLM {
 public:
  // `model`: rank 0's shard; `comm`: the group (rank 0 of it).
  GroupLeader(CausalLM& model, Communicator& comm);
  ~GroupLeader() override;  // stop()
  GroupLeader(const GroupLeader&) = delete;
  GroupLeader& operator=(const GroupLeader&) = delete;

  void forward(const Batch& batch, KvCache& cache, Activations& logits) override;
  Backend& backend() override { return model_.backend(); }
  // Tells the other ranks to return from follow_group_leader (once; later calls do nothing).
  // Call it from the thread that ran the forward passes, or after that thread has ended.
  void stop();

 private:
  CausalLM& model_;
  Communicator& comm_;
  bool stopped_ = false;
  std::vector<std::byte> payload_;
};

// On every rank but 0: runs each step rank 0's GroupLeader sends, until it stops. The KV caches
// are made here as the steps name them (the latest few kept).
void follow_group_leader(CausalLM& model, Communicator& comm);

}  // namespace loom
