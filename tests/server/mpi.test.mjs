// `mpirun -np 2 loom serve` (tensor parallel, and --pp 2: two pipeline stages) through the
// official OpenAI SDK: rank 0 serves and drives the other rank's shard (engine/model_group.h).
// Greedy answers, plain and streamed, one at a time and
// several at once, equal a single-process server's; the SDK's plain call (no optional fields)
// works; SIGTERM to mpirun stops the whole group without a rank killed. Skipped without mpirun.
import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {startServer, ROOT} from './serve_helper.mjs';
import path from 'node:path';

const MPIRUN = process.env.LOOM_MPIRUN;
const MODEL = path.join(ROOT || '', 'models', 'kjv-llama-6m');
const QUESTIONS = ['Who was Moses?', 'What did God create in the beginning?', 'Who slew Goliath?',
                   'Where was Jesus born?'];

describe('mpirun -np 2 loom serve', {skip: MPIRUN ? false : 'mpirun not found'}, () => {
  let single, group, stages, one, two, piped;
  before(async () => {
    process.env.OMPI_ALLOW_RUN_AS_ROOT = '1';
    process.env.OMPI_ALLOW_RUN_AS_ROOT_CONFIRM = '1';
    const args = ['-m', MODEL, '--ctx', '256', '--parallel', '4'];
    single = await startServer(args, {threads: 1});
    group = await startServer(args, {threads: 1,
                                     launcher: [MPIRUN, '--oversubscribe', '-np', '2']});
    stages = await startServer([...args, '--pp', '2'],
                               {threads: 1, launcher: [MPIRUN, '--oversubscribe', '-np', '2']});
    piped = new OpenAI({apiKey: 'unused', baseURL: `${stages.url}/v1`, maxRetries: 0});
    one = new OpenAI({apiKey: 'unused', baseURL: `${single.url}/v1`, maxRetries: 0});
    two = new OpenAI({apiKey: 'unused', baseURL: `${group.url}/v1`, maxRetries: 0});
  });
  after(async () => {
    if (single) assert.equal(await single.stop(), 0);
    for (const g of [group, stages]) {
      if (!g) continue;
      // mpirun itself exits 1 after a signal it forwarded; the ranks must end on their own
      // (rank 0 finishes and tells the other to stop), none killed or aborted.
      await g.stop();
      assert.match(g.log(), /shutting down/);
      assert.doesNotMatch(g.log(), /exited on signal|MPI_ABORT|noticed that process/, g.log());
    }
  });

  const ask = (client, q, extra = {}) => client.chat.completions.create({
    model: 'kjv-llama-6m', messages: [{role: 'user', content: q}], temperature: 0, max_tokens: 48,
    ...extra});

  test('greedy answers equal the single process, one at a time', async () => {
    for (const q of QUESTIONS) {
      const a = await ask(one, q), b = await ask(two, q), c = await ask(piped, q);
      assert.equal(b.choices[0].message.content, a.choices[0].message.content, q);
      assert.deepEqual(b.usage, a.usage);
      assert.equal(c.choices[0].message.content, a.choices[0].message.content, `--pp 2: ${q}`);
    }
  });

  test('several at once and streamed', async () => {
    const expected = await Promise.all(QUESTIONS.map((q) => ask(one, q)));
    const got = await Promise.all(QUESTIONS.map(async (q) => {
      const stream = await ask(two, q, {stream: true});
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      return text;
    }));
    got.forEach((t, i) => assert.equal(t, expected[i].choices[0].message.content, QUESTIONS[i]));
  });

  test('the plain SDK call', async () => {
    const r = await two.chat.completions.create({
      model: 'kjv-llama-6m', messages: [{role: 'user', content: 'Who was Abraham?'}]});
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.ok(r.usage.completion_tokens > 0);
  });
});
