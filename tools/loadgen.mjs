#!/usr/bin/env node
// loom load generator: drives an OpenAI-compatible server with N concurrent streaming requests
// and reports throughput, time to first token and inter-token latency percentiles, in the
// manner of vLLM's serving benchmark. Bounded in requests and time, and loopback only: it
// refuses any host that is not 127.0.0.0/8, ::1 or localhost.
//
//   node tools/loadgen.mjs --url http://127.0.0.1:8080 --concurrency 16 --requests 64 \
//        --max-tokens 64 [--prompt-tokens 32] [--duration 120] [--cancel-prob 0.1] [--json]
//
// Usable as a library too: import { runLoad } from './loadgen.mjs'.

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$/;

export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function promptFor(i, words) {
  // Distinct prompts (no accidental prefix sharing) of a predictable size.
  const vocab = ['river', 'stone', 'light', 'north', 'quiet', 'amber', 'field', 'glass', 'storm',
                 'cedar', 'harbor', 'lantern', 'meadow', 'orbit', 'pepper', 'silver'];
  const out = [`Request ${i}:`];
  for (let w = 0; w < words; ++w) out.push(vocab[(i * 7 + w * 3) % vocab.length]);
  return out.join(' ');
}

async function oneRequest(opts, i, stats) {
  const controller = new AbortController();
  const cancelAt = Math.random() < opts.cancelProb ? Math.random() * opts.cancelMaxMs : null;
  const t0 = performance.now();
  let first = null, last = null, tokens = 0;
  let timer = null;
  if (cancelAt !== null) timer = setTimeout(() => controller.abort(), cancelAt);
  try {
    const res = await fetch(`${opts.url}/v1/completions`, {
      method: 'POST',
      signal: controller.signal,
      headers: {'Content-Type': 'application/json',
                ...(opts.apiKey ? {Authorization: `Bearer ${opts.apiKey}`} : {})},
      body: JSON.stringify({prompt: promptFor(i, opts.promptWords), max_tokens: opts.maxTokens,
                            temperature: opts.temperature, stream: true, ignore_eos: true,
                            stream_options: {include_usage: true}}),
    });
    if (res.status !== 200) {
      stats.status[res.status] = (stats.status[res.status] || 0) + 1;
      await res.text();
      return;
    }
    const decoder = new TextDecoder();
    let buf = '';
    for await (const part of res.body) {
      buf += decoder.decode(part, {stream: true});
      let nl;
      while ((nl = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
        const chunk = JSON.parse(event.slice(6));
        if (chunk.usage) {
          stats.generated += chunk.usage.completion_tokens;
          continue;
        }
        if (!chunk.choices?.length || chunk.choices[0].finish_reason) continue;
        const now = performance.now();
        if (first === null) {
          first = now;
          stats.ttft.push((now - t0) / 1000);
        } else {
          stats.itl.push((now - last) / 1000);
        }
        last = now;
        ++tokens;
      }
    }
    stats.status[200] = (stats.status[200] || 0) + 1;
    stats.latency.push((performance.now() - t0) / 1000);
  } catch (e) {
    if (controller.signal.aborted) {
      ++stats.cancelled;
    } else {
      stats.errors.push(String(e));
    }
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export async function runLoad(options) {
  const opts = {concurrency: 1, requests: 16, maxTokens: 64, promptWords: 24, durationS: 300,
                cancelProb: 0, cancelMaxMs: 500, temperature: 0, apiKey: '', ...options};
  const host = new URL(opts.url).hostname;
  if (!LOOPBACK.test(host)) throw new Error(`loadgen only targets loopback addresses, not ${host}`);
  const stats = {ttft: [], itl: [], latency: [], status: {}, errors: [], cancelled: 0, generated: 0};
  const deadline = performance.now() + opts.durationS * 1000;
  let next = 0;
  const t0 = performance.now();
  async function worker() {
    while (next < opts.requests && performance.now() < deadline) {
      const i = next++;
      await oneRequest(opts, i, stats);
    }
  }
  await Promise.all(Array.from({length: opts.concurrency}, worker));
  const elapsed = (performance.now() - t0) / 1000;
  for (const k of ['ttft', 'itl', 'latency']) stats[k].sort((a, b) => a - b);
  return {
    concurrency: opts.concurrency,
    requests: next,
    completed: stats.status[200] || 0,
    cancelled: stats.cancelled,
    status: stats.status,
    errors: stats.errors,
    elapsed_s: elapsed,
    generated_tokens: stats.generated,
    throughput_tok_s: stats.generated / elapsed,
    ttft_p50_s: percentile(stats.ttft, 50), ttft_p99_s: percentile(stats.ttft, 99),
    itl_p50_s: percentile(stats.itl, 50), itl_p99_s: percentile(stats.itl, 99),
  };
}

function parseArgs(argv) {
  const o = {};
  const map = {'--url': 'url', '--concurrency': 'concurrency', '--requests': 'requests',
               '--max-tokens': 'maxTokens', '--prompt-words': 'promptWords', '--duration': 'durationS',
               '--cancel-prob': 'cancelProb', '--api-key': 'apiKey', '--temperature': 'temperature'};
  for (let i = 2; i < argv.length; ++i) {
    if (argv[i] === '--json') { o.json = true; continue; }
    const key = map[argv[i]];
    if (!key || i + 1 >= argv.length) throw new Error(`unknown or incomplete option ${argv[i]}`);
    const v = argv[++i];
    o[key] = ['url', 'apiKey'].includes(key) ? v : Number(v);
  }
  if (!o.url) throw new Error('--url is required (e.g. http://127.0.0.1:8080)');
  return o;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const o = parseArgs(process.argv);
  const r = await runLoad(o);
  if (o.json) {
    console.log(JSON.stringify(r));
  } else {
    const ms = (s) => (s === null ? '-' : (s * 1000).toFixed(1));
    console.log(`concurrency ${r.concurrency}: ${r.completed}/${r.requests} ok, ${r.cancelled} cancelled, ` +
                `${r.generated_tokens} tokens in ${r.elapsed_s.toFixed(1)} s = ${r.throughput_tok_s.toFixed(1)} tok/s; ` +
                `TTFT p50 ${ms(r.ttft_p50_s)} ms p99 ${ms(r.ttft_p99_s)} ms; ITL p50 ${ms(r.itl_p50_s)} ms p99 ${ms(r.itl_p99_s)} ms`);
    if (r.errors.length) console.log('errors:', r.errors.slice(0, 5));
  }
}
