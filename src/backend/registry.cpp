// The backend registry: `--device` names to backends.
#include <charconv>
#include <limits>
#include <thread>

#include "backend/backend.h"
#include "backend/cpu/kernels/kernels.h"
#include "core/error.h"

namespace loom {

namespace {

int threads_or_cores(int n) {
  if (n > 0) return n;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(cores);
}

}  // namespace

std::unique_ptr<Backend> make_backend(const BackendOptions& o) {
  const std::string& d = o.device;
  if (d == "cpu") return make_cpu_backend(threads_or_cores(o.n_threads), o.batch_invariant, o.comm);
  if (d == "cuda" || d.starts_with("cuda:")) {
    if (d.size() > 5) {
      int index = -1;
      const char* first = d.data() + 5;
      const char* last = d.data() + d.size();
      auto [p, ec] = std::from_chars(first, last, index);
      if (ec != std::errc() || p != last || index < 0) {
        fail(ErrorCode::kInvalidArgument,
             "--device '{}': after 'cuda:' comes a GPU index, 0 to {} (e.g. cuda:0)", d,
             std::numeric_limits<int>::max());
      }
    }
    fail(ErrorCode::kUnsupported,
         "--device '{}': loom was built without CUDA (configure with -DLOOM_CUDA=ON)", d);
  }
  fail(ErrorCode::kInvalidArgument, "--device '{}' is not a device loom knows (cpu, cuda, cuda:N)",
       d);
}

std::vector<std::string> available_devices() {
  return {"cpu"};
}

std::string backend_build_info() {
  const char* tier = cpu::kernels::use_avx512() ? "avx512"
                     : cpu::kernels::use_avx2() ? "avx2"
                                                : "scalar";
  return std::string("CPU kernels: ") + tier + ", CUDA: off";
}

}  // namespace loom
