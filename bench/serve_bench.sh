#!/usr/bin/env bash
# Serving benchmark: starts `loom serve` on a loopback port with MODEL, then drives it with
# tools/loadgen.mjs at 1, 4, 16 and 64 concurrent streams and prints a markdown table
# (aggregate generation throughput, TTFT and inter-token latency percentiles).
#   bash bench/serve_bench.sh MODEL.gguf [THREADS] [MAX_TOKENS]
# Every stream generates exactly MAX_TOKENS tokens (ignore_eos), from distinct ~30-token prompts.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bench/serve_bench.sh MODEL [THREADS] [MAX_TOKENS]}
threads=${2:-2}
max_tokens=${3:-32}
bin=${LOOM_BIN:-build/release/loom}
port=$((20000 + RANDOM % 20000))
log=$(mktemp)
"$bin" serve -m "$model" --host 127.0.0.1 --port "$port" -t "$threads" --parallel 64 \
  --ctx 512 --max-queue 1024 2>"$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 600); do grep -q "listening on" "$log" && break; sleep 0.1; done
grep -q "listening on" "$log" || { cat "$log"; exit 1; }
echo "| streams | requests | tokens | throughput tok/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in 1 4 16 64; do
  n=$(( c < 4 ? 4 : c * 2 ))
  node tools/loadgen.mjs --url "http://127.0.0.1:$port" --concurrency "$c" --requests "$n" \
    --max-tokens "$max_tokens" --prompt-words 24 --duration 600 --json |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);
      const ms=x=>x===null?"-":(x*1000).toFixed(1);
      console.log(`| ${r.concurrency} | ${r.completed} | ${r.generated_tokens} | ${r.throughput_tok_s.toFixed(1)} | ${ms(r.ttft_p50_s)} | ${ms(r.ttft_p99_s)} | ${ms(r.itl_p50_s)} | ${ms(r.itl_p99_s)} |`)})'
done
