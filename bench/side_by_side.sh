#!/usr/bin/env bash
# loom bench beside llama-bench builds (llama.cpp, ik_llama.cpp, ...) on the same GGUF files,
# interleaved in one sitting (loom, peer 1, peer 2, loom, ... per file and round), so that all
# see the same machine state.
#   bench/side_by_side.sh /path/to/llama-bench FILE.gguf [FILE.gguf ...]
#   PEERS="llama.cpp=/path/llama-bench ik-rtr=/path/ik/llama-bench@-rtr,1" bench/side_by_side.sh FILE...
# PEERS: space-separated NAME=PATH[@ARGS], ARGS comma-separated extra llama-bench arguments.
# Environment: THREADS (2), REPS (5), PP (128), TG (32), ROUNDS (2), LOOM (the binary).
# Prints one line per run and a table of means with loom's ratio to each peer; needs jq.
# Neither llama.cpp nor ik_llama.cpp is built or shipped here.
set -euo pipefail
if [[ -z "${PEERS:-}" ]]; then
  PEERS="llama.cpp=$1"
  shift
fi
read -r -a peers <<<"$PEERS"
threads=${THREADS:-2} reps=${REPS:-5} pp=${PP:-128} tg=${TG:-32} rounds=${ROUNDS:-2}
loom=${LOOM:-$(dirname "$0")/../build/release/loom}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((r = 0; r < rounds; ++r)); do
  for f in "$@"; do
    name=$(basename "$f" .gguf)
    json=$("$loom" bench -m "$f" -p "$pp" -n "$tg" -t "$threads" -r "$reps" --json 2>/dev/null)
    lpp=$(jq -r '.pp.tok_s' <<<"$json")
    ltg=$(jq -r '.tg.tok_s' <<<"$json")
    line="$name round $r: loom $lpp / $ltg"
    echo "$name loom $lpp $ltg" >>"$out"
    for p in "${peers[@]}"; do
      pname=${p%%=*} spec=${p#*=}
      bin=${spec%%@*} extra=()
      [[ "$spec" == *@* ]] && IFS=, read -r -a extra <<<"${spec#*@}"
      pj=$("$bin" -m "$f" -p "$pp" -n "$tg" -t "$threads" -r "$reps" "${extra[@]}" -o json 2>/dev/null)
      cpp=$(jq -r "[.[] | select(.n_prompt == $pp) | .avg_ts][0]" <<<"$pj")
      ctg=$(jq -r "[.[] | select(.n_gen == $tg) | .avg_ts][0]" <<<"$pj")
      line+=" | $pname $cpp / $ctg"
      echo "$name $pname $cpp $ctg" >>"$out"
    done
    echo "$line  (pp$pp / tg$tg tok/s, load $(cut -d' ' -f1 /proc/loadavg))"
  done
done
echo
header="| file | pp$pp loom |" sep="|---|---|"
for p in "${peers[@]}"; do
  header+=" ${p%%=*} | ratio |"
  sep+="---|---|"
done
header+=" tg$tg loom |"
sep+="---|"
for p in "${peers[@]}"; do
  header+=" ${p%%=*} | ratio |"
  sep+="---|---|"
done
echo "$header"
echo "$sep"
order=$(for p in "${peers[@]}"; do printf '%s ' "${p%%=*}"; done)
awk -v order="$order" '
  {n[$1,$2]++; pp[$1,$2]+=$3; tg[$1,$2]+=$4; files[$1]=1}
  END {
    np = split(order, names, " ")
    for (f in files) {
      l = "| " f " | " sprintf("%.1f", pp[f,"loom"]/n[f,"loom"]) " |"
      for (i = 1; i <= np; i++) { k = names[i]
        l = l sprintf(" %.1f | %.2fx |", pp[f,k]/n[f,k], (pp[f,"loom"]/n[f,"loom"])/(pp[f,k]/n[f,k])) }
      l = l " " sprintf("%.1f", tg[f,"loom"]/n[f,"loom"]) " |"
      for (i = 1; i <= np; i++) { k = names[i]
        l = l sprintf(" %.1f | %.2fx |", tg[f,k]/n[f,k], (tg[f,"loom"]/n[f,"loom"])/(tg[f,k]/n[f,k])) }
      print l
    }
  }' "$out" | sort
