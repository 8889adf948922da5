#!/usr/bin/env bash
# loom bench and llama.cpp's llama-bench on the same GGUF files, interleaved in one sitting
# (loom, llama, loom, llama, ... per file), so that both see the same machine state.
#   bench/side_by_side.sh /path/to/llama-bench FILE.gguf [FILE.gguf ...]
# Environment: THREADS (2), REPS (5), PP (128), TG (32), ROUNDS (2).
# Prints one line per run and a table of means; needs jq (apt-get install jq). llama.cpp is not
# built or shipped here.
set -euo pipefail
llama_bench=$1
shift
threads=${THREADS:-2} reps=${REPS:-5} pp=${PP:-128} tg=${TG:-32} rounds=${ROUNDS:-2}
loom=${LOOM:-$(dirname "$0")/../build/release/loom}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for f in "$@"; do
  name=$(basename "$f" .gguf)
  for ((r = 0; r < rounds; ++r)); do
    json=$("$loom" bench -m "$f" -p "$pp" -n "$tg" -t "$threads" -r "$reps" --json)
    lpp=$(jq -r '.pp.tok_s' <<<"$json")
    ltg=$(jq -r '.tg.tok_s' <<<"$json")
    lj=$("$llama_bench" -m "$f" -p "$pp" -n "$tg" -t "$threads" -r "$reps" -o json 2>/dev/null)
    cpp=$(jq -r "[.[] | select(.n_prompt == $pp) | .avg_ts][0]" <<<"$lj")
    ctg=$(jq -r "[.[] | select(.n_gen == $tg) | .avg_ts][0]" <<<"$lj")
    echo "$name round $r: loom pp$pp $lpp tg$tg $ltg | llama.cpp pp$pp $cpp tg$tg $ctg (load $(cut -d' ' -f1 /proc/loadavg))"
    echo "$name $lpp $ltg $cpp $ctg" >>"$out"
  done
done
echo
echo "| file | pp$pp loom | pp$pp llama.cpp | ratio | tg$tg loom | tg$tg llama.cpp | ratio |"
echo "|---|---|---|---|---|---|---|"
awk '{n[$1]++; a[$1]+=$2; b[$1]+=$3; c[$1]+=$4; d[$1]+=$5}
     END {for (k in n) printf "| %s | %.1f | %.1f | %.2fx | %.1f | %.1f | %.2fx |\n", k,
          a[k]/n[k], c[k]/n[k], a[k]/c[k], b[k]/n[k], d[k]/n[k], b[k]/d[k]}' "$out" | sort
