// Chaos soak (issue 13): 2,000 well-formed requests (streamed and not, n > 1, some cancelled)
// mixed with slowloris sockets, clients that never read, clients that vanish mid-stream,
// malformed and deeply nested bodies, and n = 16 bursts at the queue limit. Passes when the
// server never crashes, every well-formed request that is answered 200 carries the greedy text
// its solo run gives (429s are retried), RSS stays bounded, and open descriptors, running
// sequences and KV blocks return to their idle level at the end. scripts/test.sh runs it on
// the release build and on the sanitizer build.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import {startServer, modelPath, metric, waitFor} from './serve_helper.mjs';

const TOTAL = Number(process.env.LOOM_CHAOS_REQUESTS || 2000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function procStat(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) * 1024;
  const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  return {rss, fds};
}

function rawSocket(url) {
  const {hostname, port} = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({host: hostname, port: Number(port)}, () => resolve(s));
    s.on('error', () => resolve(s));
  });
}

function body(obj) {
  const b = JSON.stringify(obj);
  return `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
         `Content-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`;
}

async function complete(url, req, signal) {
  for (let attempt = 0; ; ++attempt) {
    const res = await fetch(`${url}/v1/completions`, {method: 'POST', signal, body: JSON.stringify(req),
                                                      headers: {'Content-Type': 'application/json'}});
    if (res.status === 429 && attempt < 200) {
      await res.text();
      await sleep(20 + Math.random() * 50);
      continue;
    }
    if (!req.stream) return {status: res.status, json: await res.json()};
    if (res.status !== 200) return {status: res.status, json: await res.json()};
    const texts = new Map();
    let done = false, buf = '';
    const decoder = new TextDecoder();
    for await (const part of res.body) {
      buf += decoder.decode(part, {stream: true});
      let nl;
      while ((nl = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (ev === 'data: [DONE]') { done = true; continue; }
        const chunk = JSON.parse(ev.slice(6));
        for (const c of chunk.choices) texts.set(c.index, (texts.get(c.index) ?? '') + c.text);
      }
    }
    return {status: done ? 200 : 599, json: {choices: [...texts.keys()].sort().map((i) => ({index: i, text: texts.get(i)}))}};
  }
}

test(`chaos soak: ${TOTAL} requests among hostile clients`, async () => {
  const s = await startServer(['-m', modelPath('llama-tiny-llama2vocab'), '--parallel', '16', '--max-queue', '48',
                               '--ctx', '256', '--read-timeout', '2', '--idle-timeout', '2', '--write-timeout', '2',
                               '--max-outbox', '65536', '--max-connections', '512']);
  const pid = s.proc.pid;
  try {
    const prompts = Array.from({length: 24}, (_, i) => `Case ${i}: ` + ['the river', 'a stone', 'north light'][i % 3] +
                                                     ' and'.repeat(i % 5));
    const maxTokens = (i) => 4 + (i % 5) * 3;
    // Solo runs first: the truth every answer under load must equal.
    const solo = [];
    for (let i = 0; i < prompts.length; ++i) {
      const r = await complete(s.url, {prompt: prompts[i], max_tokens: maxTokens(i), temperature: 0, ignore_eos: true});
      assert.equal(r.status, 200);
      solo.push(r.json.choices[0].text);
    }
    await sleep(300);
    const idle = procStat(pid);
    let peakRss = idle.rss;
    const sampler = setInterval(() => { try { peakRss = Math.max(peakRss, procStat(pid).rss); } catch { /* exited */ } }, 100);

    // Hostile traffic for as long as the soak runs.
    let stop = false;
    const hostile = [];
    const sockets = new Set();
    const track = (sock) => { sockets.add(sock); sock.on('close', () => sockets.delete(sock)); sock.on('error', () => {}); return sock; };
    hostile.push((async () => {  // slowloris: a header byte every 300 ms
      while (!stop) {
        const sock = track(await rawSocket(s.url));
        sock.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n');
        for (let i = 0; i < 15 && !stop && !sock.destroyed; ++i) { sock.write('X'); await sleep(300); }
        sock.destroy();
      }
    })());
    hostile.push((async () => {  // never reads a big stream
      while (!stop) {
        const sock = track(await rawSocket(s.url));
        sock.pause();
        sock.write(body({prompt: 'flood', max_tokens: 200, ignore_eos: true, stream: true, logprobs: 20, n: 8}));
        await sleep(1500);
        sock.destroy();
      }
    })());
    hostile.push((async () => {  // vanishes mid-stream
      while (!stop) {
        const sock = track(await rawSocket(s.url));
        sock.write(body({prompt: 'vanish', max_tokens: 100, ignore_eos: true, stream: true}));
        await sleep(Math.random() * 60);
        sock.destroy();
      }
    })());
    hostile.push((async () => {  // malformed and deeply nested bodies, garbage
      const bad = ['{"prompt": ', `{"prompt": ${'['.repeat(300000)}`, '\x00\xff\xfe', '{"prompt": "x", "n": 99}',
                   '{"prompt": [1, -5]}', '{"prompt": "x", "max_tokens": 1e400}', 'GET'];
      while (!stop) {
        for (const b of bad) {
          const r = await fetch(`${s.url}/v1/completions`, {method: 'POST', body: b}).catch(() => null);
          if (r) { assert.ok(r.status >= 400 && r.status < 500, `${r.status} for ${b.slice(0, 20)}`); await r.text(); }
        }
        const sock = track(await rawSocket(s.url));
        sock.write('POST /v1/completions HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzzzzzzzz\r\n\r\n');
        await sleep(50);
        sock.destroy();
      }
    })());
    hostile.push((async () => {  // n = 16 at the queue limit
      while (!stop) {
        const r = await fetch(`${s.url}/v1/completions`, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                          body: JSON.stringify({prompt: 'burst', n: 16, max_tokens: 2})}).catch(() => null);
        if (r) {
          assert.ok(r.status === 200 || r.status === 429, String(r.status));
          const j = await r.json();
          if (r.status === 200) assert.equal(j.choices.length, 16);
        }
        await sleep(30);
      }
    })());

    // The well-formed requests.
    let next = 0, ok = 0, cancelled = 0;
    const mismatches = [];
    const worker = async () => {
      while (next < TOTAL) {
        const id = next++;
        const i = id % prompts.length;
        const n = id % 7 === 0 ? 3 : 1;
        const req = {prompt: prompts[i], max_tokens: maxTokens(i), temperature: 0, ignore_eos: true,
                     n, stream: id % 2 === 0};
        const controller = new AbortController();
        const cancel = id % 9 === 4;
        if (cancel) setTimeout(() => controller.abort(), Math.random() * 30);
        try {
          const r = await complete(s.url, req, controller.signal);
          if (r.status === 599 && cancel) { ++cancelled; continue; }
          assert.equal(r.status, 200, JSON.stringify(r.json));
          assert.equal(r.json.choices.length, n);
          for (const c of r.json.choices) {
            if (c.text !== solo[i]) mismatches.push({id, got: c.text, want: solo[i]});
          }
          ++ok;
        } catch (e) {
          if (!cancel) throw e;
          ++cancelled;
        }
      }
    };
    await Promise.all(Array.from({length: 24}, worker));
    stop = true;
    await Promise.all(hostile);
    for (const sock of sockets) sock.destroy();
    clearInterval(sampler);
    console.log(`chaos: ${ok} answered, ${cancelled} cancelled, rss idle ${(idle.rss / 2 ** 20).toFixed(0)} MiB ` +
                `peak ${(peakRss / 2 ** 20).toFixed(0)} MiB, fds idle ${idle.fds}`);

    assert.deepEqual(mismatches.slice(0, 5), [], 'greedy answers under load equal the solo runs');
    assert.equal(ok + cancelled, TOTAL);
    assert.ok(ok > TOTAL / 2);
    assert.ok(peakRss < idle.rss + 512 * 2 ** 20, `RSS bounded (idle ${idle.rss}, peak ${peakRss})`);
    assert.ok(await waitFor(async () => (await metric(s.url, 'loom_kv_cache_blocks_used')) === 0, 15000), 'KV back to idle');
    assert.equal(await metric(s.url, 'loom_running_sequences'), 0);
    assert.equal(await metric(s.url, 'loom_queue_depth'), 0);
    assert.ok(await waitFor(async () => procStat(pid).fds <= idle.fds + 1, 15000),
              `descriptors back to idle (${idle.fds} -> ${procStat(pid).fds})`);
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
  } finally {
    assert.equal(await s.stop(), 0, 'no crash: exits cleanly at the end');
  }
});
