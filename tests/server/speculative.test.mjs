// Speculative decoding in the server (issue 17), through the official OpenAI SDK: loom's own
// trained model (models/kjv-llama-6m) served plainly, with its draft model
// (models/kjv-llama-draft, --draft) and with prompt lookup (--spec ngram). Greedy requests,
// several at once, streamed or not, get exactly the plain server's text and token counts;
// drafts were made and accepted (/metrics); sampled requests finish normally.
import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import {startServer, modelPath, metric, ROOT} from './serve_helper.mjs';

const MODEL = modelPath('kjv-llama-6m');
const DRAFT = path.join(ROOT, 'models', 'kjv-llama-draft');
const QUESTIONS = [
  'Who was Moses?',
  'What did God create in the beginning?',
  'Who slew Goliath?',
];

describe('speculative decoding', () => {
  const servers = {};
  const clients = {};
  before(async () => {
    const common = ['-m', MODEL, '--ctx', '256', '--parallel', '4'];
    servers.plain = await startServer(common);
    servers.draft = await startServer([...common, '--draft', DRAFT, '--draft-n', '6']);
    servers.ngram = await startServer([...common, '--spec', 'ngram']);
    for (const [name, s] of Object.entries(servers)) {
      clients[name] = new OpenAI({apiKey: 'unused', baseURL: `${s.url}/v1`, maxRetries: 0});
    }
  });
  after(async () => {
    for (const s of Object.values(servers)) assert.equal(await s.stop(), 0);
  });

  const ask = (client, q, extra = {}) => client.chat.completions.create({
    model: 'kjv-llama-6m', messages: [{role: 'user', content: q}], temperature: 0, max_tokens: 64, ...extra});

  async function streamed(client, q) {
    const stream = await client.chat.completions.create({
      model: 'kjv-llama-6m', messages: [{role: 'user', content: q}], temperature: 0, max_tokens: 64,
      stream: true, stream_options: {include_usage: true}});
    let text = '';
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    return {text, usage};
  }

  test('greedy answers are the plain server\'s, several requests at once', async () => {
    const plain = await Promise.all(QUESTIONS.map((q) => ask(clients.plain, q)));
    for (const name of ['draft', 'ngram']) {
      const got = await Promise.all(QUESTIONS.map((q) => ask(clients[name], q)));
      got.forEach((r, i) => {
        assert.equal(r.choices[0].message.content, plain[i].choices[0].message.content,
                     `${name}: ${QUESTIONS[i]}`);
        assert.equal(r.choices[0].finish_reason, plain[i].choices[0].finish_reason);
        assert.equal(r.usage.completion_tokens, plain[i].usage.completion_tokens);
      });
    }
    assert.ok(plain.some((r) => r.usage.completion_tokens > 20), 'answers long enough to draft');
    const drafted = await metric(servers.draft.url, 'loom_speculative_drafted_tokens_total');
    const accepted = await metric(servers.draft.url, 'loom_speculative_accepted_tokens_total');
    assert.ok(drafted > 0 && accepted > 0 && accepted <= drafted, `${accepted} of ${drafted}`);
    assert.equal(await metric(servers.plain.url, 'loom_speculative_drafted_tokens_total'), 0);
  });

  test('streamed greedy answers are the plain server\'s too', async () => {
    for (const q of QUESTIONS) {
      const plain = await streamed(clients.plain, q);
      const draft = await streamed(clients.draft, q);
      assert.equal(draft.text, plain.text, q);
      assert.equal(draft.usage.completion_tokens, plain.usage.completion_tokens);
    }
  });

  test('sampled requests and logprobs finish normally under speculation', async () => {
    const rs = await Promise.all(QUESTIONS.map((q) => ask(clients.draft, q, {temperature: 0.8, seed: 11})));
    for (const r of rs) {
      assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason));
      assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 64);
    }
    const plain = await ask(clients.plain, QUESTIONS[0], {logprobs: true, top_logprobs: 2});
    const draft = await ask(clients.draft, QUESTIONS[0], {logprobs: true, top_logprobs: 2});
    assert.deepEqual(draft.choices[0].logprobs, plain.choices[0].logprobs);
  });
});
