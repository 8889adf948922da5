// The degeneration guard through the official OpenAI SDK. The tiny random Qwen3 loops at once
// (" Guitar Guitar ..."), so a plain request shows what users get by default: finish_reason
// "repetition" with the text cut after the loop's first copy, in chat and completions,
// streamed or not; `degeneration: {"action": "off"}` runs to max_tokens with the same first
// tokens; "penalize" (the DRY penalty) steers greedy decoding off the loop; llama.cpp's dry_*
// fields do the same; bad fields are 400s naming them; /metrics counts the triggers; and a
// server started with --guard off leaves requests alone unless they ask.
import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {startServer, modelPath} from './serve_helper.mjs';

async function triggers(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const count = (action) => Number(text.match(new RegExp(`^loom_degeneration_triggers_total\\{action="${action}"\\} (\\d+)$`, 'm'))[1]);
  return {stop: count('stop'), penalize: count('penalize')};
}

describe('degeneration guard', () => {
  let server, client, model;
  before(async () => {
    server = await startServer(['-m', modelPath('qwen3-tiny-qwen3vocab'), '--parallel', '8', '--ctx', '256']);
    client = new OpenAI({apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0});
    model = (await client.models.list()).data[0].id;
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  test('a looping completion stops with finish_reason "repetition", its first copy kept', async () => {
    const before = await triggers(server.url);
    const r = await client.completions.create({model, prompt: 'Hello', max_tokens: 150, temperature: 0});
    assert.equal(r.choices[0].finish_reason, 'repetition');
    assert.equal(r.choices[0].text, ' Guitar');
    assert.ok(r.usage.completion_tokens < 64, `stopped early: ${r.usage.completion_tokens} tokens`);
    const off = await client.completions.create({model, prompt: 'Hello', max_tokens: 150, temperature: 0,
                                                 degeneration: {action: 'off'}});
    assert.equal(off.choices[0].finish_reason, 'length');
    assert.equal(off.usage.completion_tokens, 150);
    assert.ok(off.choices[0].text.startsWith(' Guitar Guitar Guitar'));
    const after = await triggers(server.url);
    assert.equal(after.stop, before.stop + 1);
  });

  test('chat, plain SDK call with no max_tokens: stops instead of filling the context', async () => {
    const r = await client.chat.completions.create({model, messages: [{role: 'user', content: 'Hello'}],
                                                    temperature: 0});
    const c = r.choices[0];
    assert.ok(['repetition', 'stop'].includes(c.finish_reason), c.finish_reason);
    if (c.finish_reason === 'repetition') assert.ok(r.usage.completion_tokens < 200);
  });

  test('streamed: ends with "repetition"; what was sent is the unguarded output\'s start', async () => {
    const stream = await client.completions.create({model, prompt: 'Hello', max_tokens: 150, temperature: 0,
                                                     stream: true});
    let text = '';
    let reason = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      reason = chunk.choices[0]?.finish_reason ?? reason;
    }
    assert.equal(reason, 'repetition');
    const off = await client.completions.create({model, prompt: 'Hello', max_tokens: 150, temperature: 0,
                                                 degeneration: {action: 'off'}});
    assert.ok(text.length > 0 && off.choices[0].text.startsWith(text));
  });

  test('penalize and dry_multiplier steer greedy decoding off the loop', async () => {
    const before = await triggers(server.url);
    const plain = await client.completions.create({model, prompt: 'Hello', max_tokens: 60, temperature: 0,
                                                   degeneration: {action: 'off'}});
    const pen = await client.completions.create({model, prompt: 'Hello', max_tokens: 60, temperature: 0,
                                                 degeneration: {action: 'penalize'}});
    assert.equal(pen.choices[0].finish_reason, 'length');
    assert.notEqual(pen.choices[0].text, plain.choices[0].text);
    assert.ok(!pen.choices[0].text.startsWith(' Guitar Guitar Guitar Guitar'), pen.choices[0].text);
    const dry = await client.completions.create({model, prompt: 'Hello', max_tokens: 60, temperature: 0,
                                                 dry_multiplier: 0.8, dry_sequence_breakers: ['\n'],
                                                 degeneration: {action: 'off'}});
    assert.equal(dry.choices[0].finish_reason, 'length');
    assert.notEqual(dry.choices[0].text, plain.choices[0].text);
    const stronger = await client.completions.create({model, prompt: 'Hello', max_tokens: 60, temperature: 0,
                                                      degeneration: {action: 'penalize', multiplier: 5, base: 2,
                                                                     allowed_length: 1, last_n: 64,
                                                                     sequence_breakers: ['\n', ':']}});
    assert.equal(stronger.choices[0].finish_reason, 'length');
    const after = await triggers(server.url);
    assert.ok(after.penalize >= before.penalize, 'penalize counts detections without stopping');
  });

  test('bad degeneration fields are 400s naming the field', async () => {
    const cases = [
      [{degeneration: {action: 'sometimes'}}, 'degeneration.action'],
      [{degeneration: 'stop'}, 'degeneration'],
      [{degeneration: {multiplier: -1}}, 'degeneration.multiplier'],
      [{degeneration: {base: 0.5}}, 'degeneration.base'],
      [{degeneration: {allowed_length: 0}}, 'degeneration.allowed_length'],
      [{degeneration: {sequence_breakers: [1]}}, 'degeneration.sequence_breakers'],
      [{degeneration: {sequence_breakers: Array(33).fill('x')}}, 'degeneration.sequence_breakers'],
      [{degeneration: {window: 3}}, 'degeneration.window'],
      [{dry_multiplier: 'high'}, 'dry_multiplier'],
      [{dry_base: 11}, 'dry_base'],
      [{dry_sequence_breakers: ''}, 'dry_sequence_breakers'],
    ];
    for (const [extra, param] of cases) {
      await assert.rejects(
        client.completions.create({model, prompt: 'Hello', max_tokens: 4, ...extra}),
        (e) => e.status === 400 && e.param === param, JSON.stringify(extra));
    }
  });
});

test('--guard off: requests run to max_tokens unless they ask for the guard', async () => {
  const s = await startServer(['-m', modelPath('qwen3-tiny-qwen3vocab'), '--ctx', '256', '--guard', 'off']);
  try {
    const client = new OpenAI({apiKey: 'unused', baseURL: `${s.url}/v1`, maxRetries: 0});
    const model = (await client.models.list()).data[0].id;
    const r = await client.completions.create({model, prompt: 'Hello', max_tokens: 100, temperature: 0});
    assert.equal(r.choices[0].finish_reason, 'length');
    const asked = await client.completions.create({model, prompt: 'Hello', max_tokens: 100, temperature: 0,
                                                   degeneration: {action: 'stop'}});
    assert.equal(asked.choices[0].finish_reason, 'repetition');
    assert.deepEqual(await triggers(s.url), {stop: 1, penalize: 0});
  } finally {
    assert.equal(await s.stop(), 0);
  }
});
