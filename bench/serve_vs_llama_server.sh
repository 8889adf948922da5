#!/usr/bin/env bash
# loom serve and llama-server side by side on the same GGUF, the same loopback load
# (tools/loadgen.mjs: streamed /v1/completions, distinct ~30-token prompts, ignore_eos):
#   1. 16 streams, 32 tokens each (32 requests): aggregate tok/s, TTFT p50/p99, ITL;
#   2. 64 concurrent clients, max_tokens 1 (256 requests): requests/s and TTFT p99 — the
#      server's own overhead per request (parse, template, tokenize, schedule, respond).
# Each configuration runs ROUNDS times, interleaving the two servers.
#   LLAMA_SERVER=/path/to/llama-server bash bench/serve_vs_llama_server.sh MODEL.gguf [THREADS] [ROUNDS]
# llama.cpp is not part of loom: build it by hand (e.g. under /tmp) and point LLAMA_SERVER at it.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: LLAMA_SERVER=... bench/serve_vs_llama_server.sh MODEL.gguf [THREADS] [ROUNDS]}
threads=${2:-2}
rounds=${3:-2}
loom=${LOOM_BIN:-build/release/loom}
llama=${LLAMA_SERVER:?set LLAMA_SERVER to a llama-server binary}

start() {  # name -> sets pid, port
  port=$((20000 + RANDOM % 20000))
  log=$(mktemp)
  if [[ $1 == loom ]]; then
    "$loom" serve -m "$model" --host 127.0.0.1 --port "$port" -t "$threads" --parallel 64 \
      --ctx 512 --max-queue 4096 2>"$log" &
  else
    "$llama" -m "$model" --host 127.0.0.1 --port "$port" -t "$threads" -tb "$threads" -np 64 \
      -c $((512 * 64)) --cont-batching --no-webui >"$log" 2>&1 &
  fi
  pid=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
}
stop() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -f "$log"; }

load() {  # concurrency requests max_tokens -> json
  node tools/loadgen.mjs --url "http://127.0.0.1:$port" --concurrency "$1" --requests "$2" \
    --max-tokens "$3" --prompt-words 24 --duration 900 --json
}

echo "| server | round | 16 streams tok/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | 64 clients, 1 token: req/s | TTFT p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for r in $(seq 1 "$rounds"); do
  for s in loom llama-server; do
    start "$s"
    a=$(load 16 32 32)
    b=$(load 64 256 1)
    stop
    node -e '
      const [s, r, a, b] = [process.argv[1], process.argv[2], JSON.parse(process.argv[3]), JSON.parse(process.argv[4])];
      const ms = (x) => (x === null ? "-" : (x * 1000).toFixed(0));
      console.log(`| ${s} | ${r} | ${a.throughput_tok_s.toFixed(1)} | ${ms(a.ttft_p50_s)} | ${ms(a.ttft_p99_s)} | ` +
                  `${ms(a.itl_p50_s)} | ${(b.completed / b.elapsed_s).toFixed(1)} | ${ms(b.ttft_p99_s)} |`);
    ' "$s" "$r" "$a" "$b"
  done
done
