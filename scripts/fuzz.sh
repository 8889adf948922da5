#!/usr/bin/env bash
# Long fuzzing campaigns: scripts/fuzz.sh [TARGET|all] [SECONDS]   (default: all, 3600)
#
# Builds the fuzz preset, runs each target for SECONDS from its committed corpus
# (tests/fuzz/corpus/TARGET) and regressions, then minimizes what it found back into the
# committed corpus (libFuzzer -merge=1; hand-written seeds, whose names are not hashes, are
# always kept). Crashes are left as build/fuzz/campaigns/crash-TARGET-* and fail the script;
# each campaign's log (executions, coverage) is build/fuzz/campaigns/TARGET.log.
# LOOM_FUZZ_JOBS targets run at once (default: the number of cores); LOOM_FUZZ_RUNS=N also
# ends a campaign after N executions (the issue's "an hour or 10^7 executions").
# Never pause a campaign (SIGSTOP, e.g. to take a benchmark): libFuzzer's -timeout counts wall
# time, so the pause is reported as a timeout of the unit that was running. End it with SIGINT
# instead (it prints its stats and the merge still runs).
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-all}
seconds=${2:-3600}
jobs=${LOOM_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

# Its own build tree (LOOM_FUZZ_BUILD), so that rebuilding build/fuzz while a campaign runs
# never replaces a binary under it.
build=${LOOM_FUZZ_BUILD:-build/fuzz-campaign}
cmake --preset fuzz -B "$build" >/dev/null
args_dir=$build/tests/fuzz/args
if [[ "$target" == all ]]; then
  mapfile -t targets < <(ls "$args_dir")
else
  targets=("$target")
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]/#/fuzz_}" >/dev/null

out=$build/campaigns
mkdir -p "$out"

campaign() {
  local name=$1
  local corpus=tests/fuzz/corpus/$name regressions=tests/fuzz/regressions/$name
  local work=$out/work-$name
  mkdir -p "$work" "$corpus"
  mapfile -t lines <"$args_dir/$name"
  local bin=${lines[0]}
  local flags=()
  for f in "${lines[@]:1}"; do
    [[ -n "$f" && "$f" != -artifact_prefix=* ]] && flags+=("$f")
  done
  local dirs=("$corpus")
  [[ -d "$regressions" ]] && dirs+=("$regressions")
  echo "fuzz.sh: $name for ${seconds}s"
  local rc=0
  local limit=()
  [[ -n "${LOOM_FUZZ_RUNS:-}" ]] && limit=("-runs=$LOOM_FUZZ_RUNS")
  ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$seconds" "${limit[@]}" -print_final_stats=1 \
    -artifact_prefix="$out/crash-$name-" "${flags[@]}" "$work" "${dirs[@]}" >"$out/$name.log" 2>&1 ||
    rc=$?
  # Minimize: hand-written seeds first (kept as they are), then whatever adds coverage.
  local merged=$out/merged-$name
  rm -rf "$merged"
  mkdir -p "$merged"
  find "$corpus" -maxdepth 1 -type f ! -regex '.*/[0-9a-f]\{40\}' -exec cp {} "$merged/" \;
  # (its own artifact prefix: a unit that times out while merging must not land in the tree)
  "$bin" -merge=1 -artifact_prefix="$out/merge-$name-" "${flags[@]}" "$merged" "$corpus" "$work" \
    >"$out/$name.merge.log" 2>&1
  find "$corpus" -maxdepth 1 -type f -regex '.*/[0-9a-f]\{40\}' -delete
  cp -n "$merged"/* "$corpus"/ 2>/dev/null || true
  local stats
  stats=$(grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$out/$name.log" | tr '\n' ' ')
  local cov
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$out/$name.log" | tail -1)
  echo "fuzz.sh: $name rc=$rc $stats$cov corpus=$(find "$corpus" -type f | wc -l) files"
  return $rc
}

status=0
running=0
for name in "${targets[@]}"; do
  campaign "$name" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while ((running > 0)); do
  wait -n || status=1
  running=$((running - 1))
done
if ((status != 0)); then
  echo "fuzz.sh: a target failed; see $out/crash-* and $out/*.log" >&2
fi
exit $status
