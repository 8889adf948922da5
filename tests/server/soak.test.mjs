// Soak: 2000 streamed requests at concurrency 32 with random client cancellations. The server
// must answer every request it kept (no 5xx), stay up, and end with the KV cache empty.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {runLoad} from '../../tools/loadgen.mjs';
import {startServer, modelPath, metric, waitFor} from './serve_helper.mjs';

test('soak: 2000 requests, concurrency 32, random cancellations', async () => {
  const s = await startServer(['-m', modelPath('llama-tiny-llama2vocab'), '--parallel', '32',
                               '--ctx', '256', '--max-queue', '64']);
  try {
    const r = await runLoad({url: s.url, concurrency: 32, requests: 2000, maxTokens: 8, promptWords: 12,
                             cancelProb: 0.15, cancelMaxMs: 40, durationS: 600});
    console.log(`soak: ${r.completed} completed, ${r.cancelled} cancelled, ${r.throughput_tok_s.toFixed(0)} tok/s, ` +
                `status ${JSON.stringify(r.status)}`);
    assert.equal(r.requests, 2000);
    assert.deepEqual(r.errors, []);
    for (const code of Object.keys(r.status)) assert.ok(Number(code) < 500, `server error ${code}`);
    assert.equal(r.completed + r.cancelled, 2000);
    assert.ok(r.cancelled > 50, 'cancellations happened');
    assert.ok(await waitFor(async () => (await metric(s.url, 'loom_kv_cache_blocks_used')) === 0));
    assert.equal(await metric(s.url, 'loom_running_sequences'), 0);
    assert.equal(await metric(s.url, 'loom_queue_depth'), 0);
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
  } finally {
    assert.equal(await s.stop(), 0, 'exits cleanly after the soak');
  }
});
