// loom serve in front of real clients and hostile ones (issue 13): each case here failed on
// main before the fix (d6d709d): the SDK's plain chat call, n > 1 near the queue limit,
// deeply nested bodies, content parts, silently ignored parameters, oversized bodies, and
// connections that never finish, never read or never leave. Then the KV policy (preemption,
// the prefix cache's tenant salt) and the connection limits.
import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import {startServer, modelPath, metric, waitFor} from './serve_helper.mjs';

const MODEL = modelPath('llama-tiny-llama2vocab');
const CHAT_MODEL = modelPath('qwen3-tiny-qwen3vocab');  // ships a chat template

// Raw HTTP on a socket: what a hostile client sends.
function connect(url) {
  const {hostname, port} = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect({host: hostname, port: Number(port)}, () => resolve(s));
    s.on('error', reject);
  });
}

function request(path, body, extra = '') {
  const b = typeof body === 'string' ? body : JSON.stringify(body);
  return `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}` +
         `Content-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`;
}

// Resolves with everything the server sent once it closes the socket (or after ms).
function readUntilClose(sock, ms = 20000) {
  return new Promise((resolve) => {
    let data = '';
    const timer = setTimeout(() => resolve({data, closed: false}), ms);
    sock.on('data', (d) => { data += d.toString(); });
    sock.on('close', () => { clearTimeout(timer); resolve({data, closed: true}); });
    sock.on('error', () => {});
  });
}

async function post(url, path, body, headers = {}) {
  const res = await fetch(`${url}${path}`, {method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body),
                                             headers: {'Content-Type': 'application/json', ...headers}});
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return {status: res.status, json, text};
}

describe('requests real clients send', () => {
  let server, client, model;
  before(async () => {
    server = await startServer(['-m', CHAT_MODEL, '--parallel', '4', '--max-queue', '64', '--ctx', '256']);
    client = new OpenAI({apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0});
    model = (await client.models.list()).data[0].id;
  });
  after(async () => assert.equal(await server.stop(), 0));

  test('the SDK chat call without max_tokens runs to a stop or the end of the context', async () => {
    const r = await client.chat.completions.create({model, messages: [{role: 'user', content: 'Hi'}]});
    assert.equal(r.choices.length, 1);
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.ok(r.usage.prompt_tokens + r.usage.completion_tokens <= 256);
    if (r.choices[0].finish_reason === 'length') {
      assert.equal(r.usage.prompt_tokens + r.usage.completion_tokens, 256, 'until the context is full');
    }
    const c = await client.completions.create({model, prompt: 'Once'});
    assert.ok(c.usage.completion_tokens <= 16, 'completions keep OpenAI\'s default of 16');
  });

  test('content given as parts is the joined text', async () => {
    const parts = await client.chat.completions.create({model, max_tokens: 6, temperature: 0,
        messages: [{role: 'user', content: [{type: 'text', text: 'Hello'}, {type: 'text', text: 'world'}]}]});
    const plain = await client.chat.completions.create({model, max_tokens: 6, temperature: 0,
        messages: [{role: 'user', content: 'Hello\nworld'}]});
    assert.equal(parts.choices[0].message.content, plain.choices[0].message.content);
    assert.equal(parts.usage.prompt_tokens, plain.usage.prompt_tokens);
    await assert.rejects(client.chat.completions.create({model, max_tokens: 2, messages: [{role: 'user',
        content: [{type: 'text', text: 'what is this?'}, {type: 'image_url', image_url: {url: 'data:image/png;base64,AA=='}}]}]}),
      (e) => e.status === 400 && /image_url/.test(e.message) && /messages\[0\]\.content\[1\]/.test(e.message));
  });

  test('no parameter is dropped in silence', async () => {
    const messages = [{role: 'user', content: 'Hi'}];
    const cases = [
      [{tools: [{type: 'code_interpreter', function: {name: 'f'}}]}, 'tools[0].type'],
      [{response_format: {type: 'json_schema', json_schema: {name: 'x', schema: {type: 'string', format: 'regex'}}}},
       'response_format.json_schema.schema'],
      [{response_format: {type: 'yaml'}}, 'response_format.type'],
      [{audio: {voice: 'x', format: 'mp3'}}, 'audio'],
      [{store: true}, 'store'],
      [{modalities: ['text', 'audio']}, 'modalities'],
      [{frobnicate: 1}, 'frobnicate'],
      [{functions: [{name: 'f'}]}, 'functions'],
    ];
    for (const [extra, param] of cases) {
      const r = await post(server.url, '/v1/chat/completions', {model, messages, max_tokens: 2, ...extra});
      assert.equal(r.status, 400, JSON.stringify(extra));
      assert.equal(r.json.error.param, param, r.text);
      assert.ok(r.json.error.message.includes(param), r.text);
    }
    // Accepted because they change nothing, or honoured.
    for (const extra of [{user: 'u1'}, {metadata: {a: 'b'}}, {service_tier: 'auto'}, {store: false},
                         {response_format: {type: 'text'}}, {tool_choice: 'none'},
                         {response_format: {type: 'json_object'}}, {regex: '[a-z]+'},
                         {tools: [{type: 'function', function: {name: 'f', parameters: {type: 'object'}}}]},
                         {tools: [{type: 'function', function: {name: 'f'}}], tool_choice: 'none'},
                         {top_k: 5, min_p: 0.1, repetition_penalty: 1.1}, {cache_salt: 'tenant-a'}]) {
      const r = await post(server.url, '/v1/chat/completions', {model, messages, max_tokens: 2, ...extra});
      assert.equal(r.status, 200, `${JSON.stringify(extra)}: ${r.text}`);
    }
    const c = await post(server.url, '/v1/completions', {model, prompt: 'x', suffix: 'y'});
    assert.equal(c.status, 400);
    assert.equal(c.json.error.param, 'suffix');
  });

  test('a body nested a million deep is a 400, and the server stays up', async () => {
    const deep = `{"model": "m", "messages": ${'['.repeat(1000000)}`;
    const r = await post(server.url, '/v1/chat/completions', deep);
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /nests deeper than 128/);
    const deep2 = `{"input": ${'['.repeat(200)}1${']'.repeat(200)}}`;
    assert.equal((await post(server.url, '/v1/completions', deep2)).status, 400);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });

  test('a body over --max-body is 413', async () => {
    const r = await fetch(`${server.url}/v1/completions`, {method: 'POST', body: 'x'.repeat(9 << 20)}).catch(() => null);
    if (r) assert.equal(r.status, 413);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });

  test('tenants do not share the prefix cache; the same tenant does', async () => {
    const prompt = 'A shared system prompt that is long enough to fill several blocks of sixteen tokens each, ' +
                   'so that the prefix cache has whole blocks to offer the next request that starts the same way.';
    const ask = (salt) => post(server.url, '/v1/completions',
                               {model, prompt, max_tokens: 1, ...(salt ? {cache_salt: salt} : {})});
    const first = await ask('alice');
    assert.equal(first.status, 200, first.text);
    const again = await ask('alice');
    assert.ok(again.json.usage.prompt_tokens_details.cached_tokens >= 16, again.text);
    const other = await ask('bob');
    assert.equal(other.json.usage.prompt_tokens_details.cached_tokens, 0, 'another tenant computes its own');
    const none = await ask(null);
    assert.equal(none.json.usage.prompt_tokens_details.cached_tokens, 0, 'no salt is a tenant of its own');
  });
});

describe('n > 1 at the queue limit (issue 13 item 2)', () => {
  test('six keep-alive clients, n: 4, three times each: every answer whole, no crash', async () => {
    const s = await startServer(['-m', MODEL, '--parallel', '1', '--max-queue', '2']);
    try {
      const ids = new Set();
      const client = async () => {
        const out = [];
        for (let i = 0; i < 3; ++i) {
          const r = await post(s.url, '/v1/completions', {prompt: 'Hello there', n: 4, max_tokens: 3, ignore_eos: true});
          out.push(r);
        }
        return out;
      };
      const all = (await Promise.all(Array.from({length: 6}, client))).flat();
      for (const r of all) {
        assert.ok(r.status === 200 || r.status === 429, `${r.status} ${r.text}`);
        if (r.status === 200) {
          assert.equal(r.json.choices.length, 4, r.text);
          assert.deepEqual(r.json.choices.map((c) => c.index), [0, 1, 2, 3]);
          for (const c of r.json.choices) assert.equal(c.finish_reason, 'length');
          assert.ok(!ids.has(r.json.id), 'a fresh id per response');
          ids.add(r.json.id);
        }
      }
      assert.ok(all.some((r) => r.status === 200));
      assert.ok(await waitFor(async () => (await metric(s.url, 'loom_kv_cache_blocks_used')) === 0));
    } finally {
      assert.equal(await s.stop(), 0, 'still alive, exits cleanly');
    }
  });
});

describe('connections', () => {
  let s;
  before(async () => {
    s = await startServer(['-m', MODEL, '--max-connections', '8', '--read-timeout', '1',
                           '--idle-timeout', '1', '--write-timeout', '2', '--max-outbox', '65536']);
  });
  after(async () => assert.equal(await s.stop(), 0));

  test('slowloris: a request that does not finish in --read-timeout is closed', async () => {
    for (const partial of ['POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n',
                           request('/v1/completions', '{"prompt": "x"}').slice(0, -3)]) {
      const sock = await connect(s.url);
      const done = readUntilClose(sock, 10000);
      sock.write(partial);
      const t0 = Date.now();
      // A byte now and then does not keep it open: the deadline counts from the first byte.
      const drip = setInterval(() => sock.write(' '), 300);
      const r = await done;
      clearInterval(drip);
      assert.ok(r.closed, 'closed by the server');
      assert.ok(Date.now() - t0 < 4000, `closed after ${Date.now() - t0} ms`);
    }
  });

  test('an idle keep-alive connection is closed after --idle-timeout', async () => {
    const sock = await connect(s.url);
    const done = readUntilClose(sock, 10000);
    sock.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    const r = await done;
    assert.ok(r.closed);
    assert.match(r.data, /200 OK/);
  });

  test('beyond --max-connections new connections get 503; the server recovers', async () => {
    const held = [];
    for (let i = 0; i < 8; ++i) held.push(await connect(s.url));
    await new Promise((r) => setTimeout(r, 100));
    const extra = await connect(s.url);
    const r = await readUntilClose(extra, 5000);
    assert.match(r.data, /^HTTP\/1\.1 503/);
    assert.match(r.data, /too_many_connections/);
    for (const h of held) h.destroy();
    assert.ok(await waitFor(async () => (await fetch(`${s.url}/health`).catch(() => ({status: 0}))).status === 200));
  });

  test('a streaming client that never reads is dropped and its KV freed', async () => {
    const sock = await connect(s.url);
    sock.pause();  // never read: the kernel buffers fill, the outbox passes --max-outbox
    sock.write(request('/v1/completions', {prompt: 'Tell me everything', max_tokens: 240, ignore_eos: true,
                                           stream: true, logprobs: 20, n: 16}));
    // Cut off: counted as 499 (client closed) once the server drops it; wait for that rather
    // than for "nothing running", which also holds before the request is admitted.
    const cutOff = async () => /loom_requests_total\{endpoint="completions",status="499"\} [1-9]/.test(
        await (await fetch(`${s.url}/metrics`)).text());
    assert.ok(await waitFor(cutOff, 20000), 'the request was cut off, not finished');
    assert.ok(await waitFor(async () => (await metric(s.url, 'loom_running_sequences')) === 0, 20000));
    assert.ok(await waitFor(async () => (await metric(s.url, 'loom_kv_cache_blocks_used')) === 0, 5000));
    const rest = readUntilClose(sock, 5000);
    sock.resume();
    const r = await rest;
    assert.ok(r.closed);
    assert.ok(!r.data.includes('[DONE]'), 'the stream was not completed');
  });

  test('a client that vanishes mid-stream is cancelled', async () => {
    const sock = await connect(s.url);
    sock.write(request('/v1/completions', {prompt: 'Go', max_tokens: 240, ignore_eos: true, stream: true}));
    await new Promise((r) => sock.once('data', r));
    sock.destroy();
    assert.ok(await waitFor(async () => (await metric(s.url, 'loom_kv_cache_blocks_used')) === 0, 5000));
  });
});

describe('KV policy', () => {
  test('a pool smaller than the demand preempts and recomputes: every answer equals its solo run', async () => {
    // 24 blocks of 16 tokens; 8 requests that each grow to ~150 tokens need ~80 blocks at once.
    // The random-weight model loops: the degeneration guard is off so that every request grows.
    const s = await startServer(['-m', MODEL, '--parallel', '8', '--kv-memory', String(24 * 16 * 512),
                                 '--kv-type', 'f32', '--ctx', '256', '--guard', 'off']);
    try {
      assert.match(s.log(), /KV cache f32/);
      const prompts = Array.from({length: 8}, (_, i) => `Story ${i}: ` + 'and then '.repeat(1 + i));
      const ask = (prompt) => post(s.url, '/v1/completions', {prompt, max_tokens: 120, temperature: 0, ignore_eos: true});
      const alone = [];
      for (const p of prompts) alone.push((await ask(p)).json.choices[0].text);
      const together = await Promise.all(prompts.map(ask));
      for (let i = 0; i < prompts.length; ++i) {
        assert.equal(together[i].status, 200, together[i].text);
        assert.equal(together[i].json.choices[0].text, alone[i], `request ${i}`);
      }
      assert.ok((await metric(s.url, 'loom_preemptions_total')) > 0, 'the pool was too small: it preempted');
      assert.ok(await waitFor(async () => (await metric(s.url, 'loom_kv_cache_blocks_used')) === 0));
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  test('--ctx beyond the KV budget fails at start-up, naming both', async () => {
    await assert.rejects(startServer(['-m', MODEL, '--kv-memory', '32K', '--ctx', '256']),
                         /--ctx 256 needs .* holds \d+ tokens/);
  });

  test('the start-up line states the budget, the tokens and the longest request', async () => {
    const s = await startServer(['-m', MODEL]);
    try {
      assert.match(s.log(), /KV cache f16 [\d.]+ [KMG]iB = \d+ tokens \(\d+ blocks of 16, [\d.]+ KiB a token\) from 90% of [\d.]+ GiB memory/);
      assert.match(s.log(), /a request may use up to 256 tokens/);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});
