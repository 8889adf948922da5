// loom serve with an encoder model (bert-tiny) answering POST /v1/embeddings, driven by the
// official OpenAI SDK and by plain fetch: token-id inputs (the reference folder has no
// tokenizer), float and base64 encodings agree, embeddings are unit length by default, the
// unnormalised mean pooling equals transformers' reference, and bad requests get 400.
import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import {startServer, modelPath} from './serve_helper.mjs';

// The reference's input_ids / attention_mask (int32) and mean_pooled (float32).
function readReference() {
  const buf = fs.readFileSync(path.join(modelPath('bert-tiny'), 'reference.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString());
  const get = (name, Type) => {
    const [a, b] = header[name].data_offsets;
    const bytes = buf.subarray(8 + n + a, 8 + n + b);
    return new Type(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  };
  return {ids: get('input_ids', Int32Array), mask: get('attention_mask', Int32Array),
          mean: get('mean_pooled', Float32Array), shape: header.input_ids.shape};
}

async function post(url, body) {
  const res = await fetch(`${url}/v1/embeddings`, {method: 'POST', body: JSON.stringify(body),
                                                   headers: {'Content-Type': 'application/json'}});
  return {status: res.status, body: await res.json()};
}

describe('loom serve /v1/embeddings', () => {
  let server, client;
  before(async () => {
    server = await startServer(['-m', modelPath('bert-tiny')]);
    client = new OpenAI({apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0});
  });
  after(async () => {
    assert.equal(await server.stop(), 0, 'SIGTERM exits cleanly');
  });

  test('SDK: token ids, base64 (the SDK default) equals float', async () => {
    const input = [[2, 10, 11, 3], [2, 20, 21, 22, 23, 3]];
    const a = await client.embeddings.create({model: 'bert-tiny', input});
    const b = await client.embeddings.create({model: 'bert-tiny', input, encoding_format: 'float'});
    assert.equal(a.object, 'list');
    assert.equal(a.data.length, 2);
    assert.equal(a.usage.prompt_tokens, 10);
    assert.equal(a.usage.total_tokens, 10);
    for (let i = 0; i < 2; i++) {
      assert.equal(a.data[i].index, i);
      assert.equal(a.data[i].object, 'embedding');
      assert.equal(b.data[i].embedding.length, 64);
      const norm = Math.hypot(...b.data[i].embedding);
      assert.ok(Math.abs(norm - 1) < 1e-5, `unit length, got ${norm}`);
      for (let j = 0; j < 64; j++) {
        assert.ok(Math.abs(a.data[i].embedding[j] - b.data[i].embedding[j]) < 1e-6);
      }
    }
  });

  test('mean pooling equals the transformers reference', async () => {
    const ref = readReference();
    const [n, len] = ref.shape;
    const input = [];
    for (let s = 0; s < n; s++) {
      const ids = [];
      for (let t = 0; t < len; t++) if (ref.mask[s * len + t]) ids.push(ref.ids[s * len + t]);
      input.push(ids);
    }
    const r = await post(server.url, {input, normalize: false});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    for (let s = 0; s < n; s++) {
      let num = 0, den = 0;
      for (let j = 0; j < 64; j++) {
        const d = r.body.data[s].embedding[j] - ref.mean[s * 64 + j];
        num += d * d;
        den += ref.mean[s * 64 + j] ** 2;
      }
      assert.ok(Math.sqrt(num / den) < 1e-4, `input ${s}: relative error ${Math.sqrt(num / den)}`);
    }
  });

  test('bad requests are 400 with a message', async () => {
    for (const [body, words] of [
      [{}, "'input' is required"],
      [{input: []}, "'input' must be"],
      [{input: [[2, 99999]]}, '99999'],
      [{input: 'text'}, 'no tokenizer'],
      [{input: [[1]], encoding_format: 'hex'}, 'encoding_format'],
      [{input: [[1, -2]]}, 'non-negative'],
    ]) {
      const r = await post(server.url, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(r.body.error.message.includes(words), `${JSON.stringify(body)}: ${r.body.error.message}`);
    }
    const c = await fetch(`${server.url}/v1/completions`,
                          {method: 'POST', body: JSON.stringify({prompt: [1], max_tokens: 1})});
    assert.equal(c.status, 400);
    assert.ok((await c.json()).error.message.includes('/v1/embeddings'));
    const m = await (await fetch(`${server.url}/v1/models`)).json();
    assert.equal(m.data[0].id, 'bert-tiny');
  });
});
