#!/usr/bin/env bash
# Issue 13's KV-policy check at real size: an 8B-shaped llama (32 layers, 4096 hidden, 8 KV
# heads x 128, 131,072-token context, random weights, Q4_0) made with `loom synth` + `loom
# convert`, served with default flags, then 16 concurrent streams. Prints the start-up line
# (budget, tokens, longest request), the load result and the server's peak RSS.
#   bash bench/kv_policy_8b.sh [WORKDIR]     (needs ~20 GB of disk while converting, 4 GB after)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/loom-8b}
loom=${LOOM_BIN:-build/release/loom}
mkdir -p "$work"
gguf=$work/llama8b-q4_0.gguf
if [[ ! -f $gguf ]]; then
  "$loom" synth --arch llama --hidden 4096 --layers 32 --heads 32 --kv-heads 8 --ffn 14336 \
    --vocab-from models/llama-tiny-llama2vocab --context 131072 -o "$work/hf"
  LOOM_MMAP=1 "$loom" convert "$work/hf" -o "$gguf" --type q4_0
  rm -f "$work/hf/model.safetensors"
fi
port=$((20000 + RANDOM % 20000))
log=$(mktemp)
"$loom" serve -m "$gguf" --port "$port" 2>"$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 1200); do grep -q "listening on" "$log" && break; sleep 0.5; done
grep "loom serve" "$log"
node tools/loadgen.mjs --url "http://127.0.0.1:$port" --concurrency 16 --requests 16 --max-tokens 16
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^loom_requests_total|^loom_preemptions_total'
grep -E 'VmHWM' "/proc/$pid/status"
