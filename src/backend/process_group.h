// The processes one `loom` command runs as. Started by `mpirun -np N loom ...` (the launcher's
// environment says so), the N processes are one tensor-parallel group over MPI_COMM_WORLD: each
// loads its shard of the model, runs the same steps on the same inputs and meets the others in
// the collectives (Backend::all_reduce, all_gather); rank 0 prints, the others are quiet.
// Started alone, the group is this process and nothing here touches MPI.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "backend/communicator.h"

namespace loom {

// First thing in main: reads the launcher's environment (Open MPI's OMPI_COMM_WORLD_SIZE, PMI's
// PMI_SIZE) and initialises MPI when there is one. Throws Error(kUnsupported) when started by a
// launcher in a build without MPI.
void init_process_group(int& argc, char**& argv);
// The group's communicator; null when this process runs alone (a world of one).
std::shared_ptr<Communicator> process_group();
int process_rank();
int process_world();
// How many ranks of the group run on this host (they share its cores).
int local_ranks();

// The group as `stages` pipeline stages (`loom --pp K`) of process_world() / stages
// tensor-parallel ranks each: rank r is in stage r / per_stage at place r % per_stage.
struct PipelineLayout {
  std::shared_ptr<Communicator> stage_group;  // this rank's stage (null when alone in it)
  int stage = 0, stages = 1;
  int rank = 0, world = 1;  // the place in the stage
};
// Collective (every rank, the same `stages`) the first time for a value. kInvalidArgument when
// the ranks do not divide into `stages` stages.
PipelineLayout pipeline_layout(int stages);
// Bytes this process has put into MPI collectives and sends so far (each all-reduce's and
// all-gather's own part, a broadcast's data at its root, a send's data), for bench's
// "exchanged per token". What crosses the wire is about (ranks - 1) times the collectives' part.
uint64_t process_bytes_sent();

// The command line's --pp (1 when not given), read by the model loader.
void set_pipeline_stages(int stages);
int pipeline_stages();
// The same seed on every rank: `seed` when given, else one drawn on rank 0 and broadcast, so
// that sampling agrees everywhere (every rank samples from the same all-gathered logits).
uint64_t agree_on_seed(const std::optional<uint64_t>& seed);
// Every rank passes its 64-bit value; Error(kInvalidArgument) on the ranks whose value differs
// from rank 0's, naming `what` (e.g. a model file that is not the same on every host).
void check_same_on_every_rank(uint64_t value, const char* what);
// A failure on one rank ends the whole group (the others would wait in a collective forever):
// MPI_Abort with `exit_code`. Returns only when this process runs alone.
void abort_process_group(int exit_code);
// Ends MPI (every rank, at exit); nothing when alone.
void finalize_process_group();

}  // namespace loom
