// loom serve driven by the official OpenAI SDK: chat and completions, streamed and not, usage,
// stop strings, error shapes, 64 concurrent streams equal to their single runs, disconnects
// freeing KV blocks, and the 401/400/429 cases.
import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {startServer, modelPath, metric, waitFor} from './serve_helper.mjs';

describe('loom serve with the OpenAI SDK', () => {
  let server, client, model;
  before(async () => {
    server = await startServer(['-m', modelPath('qwen3-tiny-qwen3vocab'), '--parallel', '64',
                                '--ctx', '256', '--max-queue', '256']);
    client = new OpenAI({apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0});
    model = (await client.models.list()).data[0].id;
  });
  after(async () => {
    assert.equal(await server.stop(), 0, 'SIGTERM exits cleanly');
  });

  test('models list', async () => {
    const models = await client.models.list();
    assert.equal(models.data.length, 1);
    assert.equal(models.data[0].id, 'qwen3-tiny-qwen3vocab');
    assert.equal(models.data[0].object, 'model');
  });

  test('completion with usage', async () => {
    const r = await client.completions.create({model, prompt: [9707, 11, 1879, 0, 1207],
                                               max_tokens: 7, temperature: 0, ignore_eos: true});
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.prompt_tokens, 5);
    assert.equal(r.usage.completion_tokens, 7);
    assert.equal(r.usage.total_tokens, 12);
    assert.ok(r.choices[0].text.length > 0);
  });

  test('chat, plain and streamed, agree', async () => {
    const messages = [{role: 'system', content: 'You are terse.'}, {role: 'user', content: 'Say hi.'}];
    const plain = await client.chat.completions.create({model, messages, max_tokens: 10, temperature: 0});
    assert.equal(plain.object, 'chat.completion');
    assert.equal(plain.choices[0].message.role, 'assistant');
    const stream = await client.chat.completions.create({model, messages, max_tokens: 10, temperature: 0,
                                                         stream: true, stream_options: {include_usage: true}});
    let text = '', finish = null, usage = null, role = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        if (c.delta.role) role = c.delta.role;
        text += c.delta.content ?? '';
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.equal(role, 'assistant');
    assert.equal(text, plain.choices[0].message.content);
    assert.equal(finish, plain.choices[0].finish_reason);
    assert.deepEqual(usage.prompt_tokens, plain.usage.prompt_tokens);
    assert.deepEqual(usage.completion_tokens, plain.usage.completion_tokens);
  });

  test('stop string is honoured and not returned', async () => {
    const full = await client.completions.create({model, prompt: 'The quick brown fox', max_tokens: 16,
                                                  temperature: 0, ignore_eos: true});
    const text = full.choices[0].text;
    assert.ok(text.length > 8, `need some text, got ${JSON.stringify(text)}`);
    const stop = text.slice(4, 7);
    const cut = await client.completions.create({model, prompt: 'The quick brown fox', max_tokens: 16,
                                                 temperature: 0, ignore_eos: true, stop: [stop]});
    assert.equal(cut.choices[0].text, text.slice(0, text.indexOf(stop)));
    assert.equal(cut.choices[0].finish_reason, 'stop');
  });

  test('seeded sampling repeats; n choices; logprobs', async () => {
    const args = {model, prompt: 'Once', max_tokens: 8, temperature: 1.0, seed: 42, ignore_eos: true};
    const a = await client.completions.create(args);
    const b = await client.completions.create(args);
    assert.equal(a.choices[0].text, b.choices[0].text);
    const messages = [{role: 'user', content: 'hi'}];
    const n = await client.chat.completions.create({model, messages, max_tokens: 4, n: 3, seed: 1,
                                                    logprobs: true, top_logprobs: 2});
    assert.equal(n.choices.length, 3);
    for (const c of n.choices) {
      assert.equal(c.logprobs.content.length, 4);
      for (const t of c.logprobs.content) {
        assert.ok(t.logprob <= 0);
        assert.equal(t.top_logprobs.length, 2);
        assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
      }
    }
  });

  test('errors are shaped as the SDK expects', async () => {
    await assert.rejects(client.completions.create({model, prompt: 'x', max_tokens: 100000}), (e) => {
      assert.equal(e.status, 400);
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.match(e.message, /max_tokens|context/);
      return true;
    });
    await assert.rejects(client.completions.create({model, prompt: 'x', temperature: 'hot'}), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.error.message, /temperature/);
      assert.equal(e.error.type, 'invalid_request_error');
      return true;
    });
    await assert.rejects(client.completions.create({model: 'gpt-9', prompt: 'x'}), (e) => {
      assert.equal(e.status, 404);
      assert.equal(e.error.code, 'model_not_found');
      return true;
    });
    const long = 'word '.repeat(400);
    await assert.rejects(client.completions.create({model, prompt: long, max_tokens: 4}), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.message, /maximum context length is 256 tokens/);
      return true;
    });
    for (const body of ['{"prompt": ', '[1,2]', '{"prompt": "x", "max_tokens": "ten"}', '']) {
      const res = await fetch(`${server.url}/v1/completions`, {method: 'POST', body});
      assert.equal(res.status, 400, body);
      const j = await res.json();
      assert.equal(typeof j.error.message, 'string');
      assert.ok('type' in j.error && 'param' in j.error && 'code' in j.error);
    }
    const big = await fetch(`${server.url}/v1/completions`, {method: 'POST', body: 'x'.repeat(9 << 20)})
                    .catch(() => null);
    if (big) assert.equal(big.status, 413);
    assert.equal((await fetch(`${server.url}/nope`)).status, 404);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });

  test('64 concurrent streams give the ids each gives alone', async () => {
    const prompts = Array.from({length: 64}, (_, i) => `Story ${i}: the ${['cat', 'dog', 'owl', 'fox'][i % 4]} ` +
                                              'and '.repeat(i % 9) + 'then');
    const ask = (prompt, stream) => client.completions.create({model, prompt, max_tokens: 12, temperature: 0,
                                                              ignore_eos: true, stream});
    const alone = [];
    for (const p of prompts) alone.push((await ask(p, false)).choices[0].text);
    const together = await Promise.all(prompts.map(async (p) => {
      let text = '';
      for await (const chunk of await ask(p, true)) text += chunk.choices[0]?.text ?? '';
      return text;
    }));
    assert.deepEqual(together, alone);
  });

  test('a disconnect frees its KV blocks', async () => {
    const controller = new AbortController();
    const stream = await client.completions.create(
        {model, prompt: 'Tell a long story', max_tokens: 200, temperature: 0, ignore_eos: true, stream: true},
        {signal: controller.signal});
    let chunks = 0;
    try {
      for await (const chunk of stream) {
        if (++chunks === 3) controller.abort();  // the SDK closes the connection
      }
    } catch (e) {
      assert.ok(controller.signal.aborted, String(e));
    }
    assert.ok(chunks >= 3 && chunks < 50, `stopped early (${chunks} chunks)`);
    assert.ok(await waitFor(async () => (await metric(server.url, 'loom_kv_cache_blocks_used')) === 0),
              'KV blocks back to zero after the client left');
    assert.equal(await metric(server.url, 'loom_running_sequences'), 0);
  });
});

describe('authentication and overload', () => {
  test('401 without the key, /health open', async () => {
    const s = await startServer(['-m', modelPath('llama-tiny-llama2vocab'), '--api-key', 'sekrit', '--ctx', '128']);
    try {
      const bad = new OpenAI({apiKey: 'wrong', baseURL: `${s.url}/v1`, maxRetries: 0});
      await assert.rejects(bad.models.list(), (e) => e.status === 401 && e instanceof OpenAI.AuthenticationError);
      const none = await fetch(`${s.url}/v1/models`);
      assert.equal(none.status, 401);
      assert.equal((await fetch(`${s.url}/metrics`)).status, 401);
      assert.equal((await fetch(`${s.url}/health`)).status, 200);
      const good = new OpenAI({apiKey: 'sekrit', baseURL: `${s.url}/v1`, maxRetries: 0});
      const r = await good.completions.create({model: 'llama-tiny-llama2vocab', prompt: 'Hi', max_tokens: 3});
      assert.equal(r.usage.completion_tokens <= 3, true);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  test('429 with Retry-After when the queue is full', async () => {
    const s = await startServer(['-m', modelPath('llama-tiny-llama2vocab'), '--parallel', '1',
                                 '--max-queue', '1', '--ctx', '256']);
    try {
      const results = await Promise.all(Array.from({length: 8}, () =>
          fetch(`${s.url}/v1/completions`, {method: 'POST', headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({prompt: 'Hello', max_tokens: 120, ignore_eos: true})})
              .then(async (r) => ({status: r.status, retry: r.headers.get('retry-after'), body: await r.json()}))));
      const limited = results.filter((r) => r.status === 429);
      assert.ok(limited.length >= 1, JSON.stringify(results.map((r) => r.status)));
      for (const r of limited) {
        assert.equal(r.retry, '1');
        assert.equal(r.body.error.code, 'rate_limit_exceeded');
      }
      assert.ok(results.some((r) => r.status === 200));
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  test('SIGTERM finishes running requests, then exits', async () => {
    const s = await startServer(['-m', modelPath('llama-tiny-llama2vocab'), '--ctx', '256']);
    const pending = fetch(`${s.url}/v1/completions`, {method: 'POST',
        body: JSON.stringify({prompt: 'Hello', max_tokens: 60, ignore_eos: true})}).then((r) => r.json());
    await new Promise((r) => setTimeout(r, 30));
    const code = await s.stop();
    const body = await pending;
    assert.equal(code, 0);
    assert.equal(body.usage.completion_tokens, 60, 'the running request was finished, not cut');
  });
});
