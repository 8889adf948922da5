#!/usr/bin/env bash
# Runs loom's whole test suite, the README's second command and what CI runs:
#   1. release build (-O3, native): unit, reference and CLI tests;
#   2. fuzz preset (clang + AddressSanitizer + UBSan): the same unit tests, the replay of every
#      fuzz corpus and regression, and the server suites (hostile clients, chaos soak) under
#      the sanitizers; then each libFuzzer target for LOOM_FUZZ_SECONDS (default 30) from its
#      committed corpus.
# Set LOOM_TEST_QUICK=1 to run stage 1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
bash scripts/fetch-test-data.sh

echo "== release build and tests"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs"

if [[ "${LOOM_TEST_QUICK:-0}" == 1 ]]; then
  exit 0
fi

echo "== sanitizer build (clang, ASan + UBSan) and tests"
cmake --preset fuzz -DLOOM_FUZZ_SECONDS="${LOOM_FUZZ_SECONDS:-30}" >/dev/null
cmake --build --preset fuzz -j "$jobs"
# Left out here, run by the release stage: the tests that repeat already-covered paths at volume
# (3,000 sampled generations, a 13.8 MB clean corpus, 315 MaskBench schemas, the model suite
# again on the AVX2 kernels, 100 MB of real tokenizer.json read twice). Under the sanitizers
# they took 360 s; the paths they cover run here through smaller tests and the corpus replays.
sanitizer_skip='^(Speculative\.SamplingKeepsTheTargetsDistribution|CliGuardCheck\.CleanCorpusIsNeverFlagged'
sanitizer_skip+='|GrammarBench\.MaskBenchSubset|model_test_avx2_tier'
sanitizer_skip+='|TokenizerJsonReader\.RealFilesGiveThePlainDocument)$'
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/fuzz -L unit -E "$sanitizer_skip" -j "$jobs" --output-on-failure
# The servers under the sanitizers, one suite at a time (they time their clients).
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/fuzz -L server -j 1 --output-on-failure

echo "== fuzzing (${LOOM_FUZZ_SECONDS:-30} s per target)"
ctest --preset fuzz -j "$jobs"
