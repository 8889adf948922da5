// loom pull ORG/NAME[@REVISION][:TAG]: download a model from the Hugging Face Hub into the
// cache huggingface_hub uses (only the files loom reads), and print its local path.
#include <fmt/format.h>

#include "cli/commands.h"
#include "core/error.h"
#include "hub/hub.h"

namespace loom::cli {

namespace {

struct PullArgs {
  std::string name;
  int parallel = 4;
};

int run_pull(const PullArgs& a) {
  const std::optional<hub::HubName> name = hub::parse_hub_name(a.name);
  if (!name) {
    fail(ErrorCode::kInvalidArgument,
         "'{}' is not a Hugging Face model name (ORG/NAME, ORG/NAME:Q4_K_M, ORG/NAME:FILE.gguf, "
         "optionally ORG/NAME@REVISION)",
         a.name);
  }
  hub::PullOptions options;
  options.parallel = a.parallel;
  const std::string path = hub::pull(*name, options);
  fmt::print("{}\n", path);
  return 0;
}

}  // namespace

Command add_pull(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "pull", "Download a model from the Hugging Face Hub into its cache (resumable, checked)");
  auto a = std::make_shared<PullArgs>();
  cmd->add_option("name", a->name,
                  "ORG/NAME (a safetensors folder), ORG/NAME:Q4_K_M or ORG/NAME:FILE.gguf "
                  "(GGUF repositories), optionally ORG/NAME@REVISION")
      ->required();
  cmd->add_option("-j,--parallel", a->parallel, "files downloaded at once (default 4)")
      ->check(CLI::Range(1, 16));
  cmd->footer(
      "Environment: HF_TOKEN (gated or private repositories), HF_ENDPOINT, HF_HUB_CACHE / "
      "HF_HOME (the cache), HF_HUB_OFFLINE=1 (never download).");
  return {cmd, [a] {
            refuse_process_group("pull");  // every rank would download into the same folder
            return run_pull(*a);
          }};
}

}  // namespace loom::cli
