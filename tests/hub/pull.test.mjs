// `loom pull` and Hub names against a stand-in Hub on loopback (fake_hub.mjs): the cache it
// writes is huggingface_hub's layout, only the files loom reads are fetched, LFS downloads
// follow the redirect to a second host without the token, interrupted downloads resume with
// Range, corrupt bytes are caught by sha256, gated and missing repositories are errors a person
// can act on, and pulled models then run offline by name.
import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {after, before, test} from 'node:test';

import {CDN_HOST, startFakeHub} from './fake_hub.mjs';

const BIN = process.env.LOOM_BIN;
const ROOT = process.env.LOOM_SOURCE_DIR;
const MODEL = path.join(ROOT, 'models/llama-tiny-llama2vocab');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-hub-'));

let hub;
const folderFiles = {};
const ggufFiles = {};

// Runs loom asynchronously: the stand-in Hub answers from this same process.
function loom(args, {cache, env = {}} = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, args, {
      env: {
        ...process.env,
        HF_ENDPOINT: hub.endpoint,
        HF_HUB_CACHE: cache,
        LOOM_HUB_RESOLVE: `${CDN_HOST}:${hub.port}:127.0.0.1`,
        HF_TOKEN: '',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 120000);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({code, out, err});
    });
  });
}

const freshCache = (name) => fs.mkdtempSync(path.join(TMP, `${name}-`));
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const repoDir = (cache, repo) => path.join(cache, `models--${repo.replace('/', '--')}`);

before(async () => {
  assert.ok(BIN && ROOT, 'LOOM_BIN and LOOM_SOURCE_DIR must be set (run through ctest)');
  for (const f of ['config.json', 'generation_config.json', 'tokenizer.json',
                   'tokenizer_config.json', 'model.safetensors']) {
    folderFiles[f] = fs.readFileSync(path.join(MODEL, f));
  }
  // What a real repository also holds, which loom must not fetch.
  folderFiles['README.md'] = Buffer.from('# tiny\n');
  folderFiles['pytorch_model.bin'] = crypto.randomBytes(4096);
  folderFiles['onnx/model.onnx'] = crypto.randomBytes(1024);
  for (const type of ['q8_0', 'f16']) {
    const out = path.join(TMP, `tiny-${type.toUpperCase()}.gguf`);
    const r = spawnSync(BIN, ['convert', MODEL, '-o', out, '--type', type, '--quiet'],
                        {encoding: 'utf8'});
    assert.equal(r.status, 0, r.stderr);
    ggufFiles[path.basename(out)] = fs.readFileSync(out);
  }
  ggufFiles['README.md'] = Buffer.from('# gguf\n');
  hub = await startFakeHub({
    'loom-test/tiny': {files: folderFiles},
    'loom-test/tiny-GGUF': {files: ggufFiles},
    'loom-test/gated': {files: folderFiles, gated: true},
    'loom-test/old-name': {movedTo: 'loom-test/tiny'},
  });
});

after(async () => {
  await hub?.close();
  fs.rmSync(TMP, {recursive: true, force: true});
});

test('pull writes the huggingface_hub cache layout with only the files loom reads', async () => {
  const cache = freshCache('folder');
  hub.state.log.length = 0;
  const r = await loom(['pull', 'loom-test/tiny'], {cache});
  assert.equal(r.code, 0, r.err);
  const repo = repoDir(cache, 'loom-test/tiny');
  const commit = fs.readFileSync(path.join(repo, 'refs/main'), 'utf8');
  assert.match(commit, /^[0-9a-f]{40}$/);
  const snapshot = path.join(repo, 'snapshots', commit);
  assert.equal(r.out.trim(), snapshot);
  assert.deepEqual(fs.readdirSync(snapshot).sort(), ['config.json', 'generation_config.json',
    'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  // Symlinks into blobs/, LFS blobs named by their sha256.
  const link = fs.readlinkSync(path.join(snapshot, 'model.safetensors'));
  assert.equal(link, `../../blobs/${sha256(folderFiles['model.safetensors'])}`);
  assert.ok(fs.readFileSync(path.join(snapshot, 'model.safetensors'))
    .equals(folderFiles['model.safetensors']));
  // Redirected to the CDN host, and the token (none here) never goes there.
  const cdn = hub.state.log.filter((e) => e.host === CDN_HOST);
  assert.equal(cdn.filter((e) => e.method === 'GET').length, 1);
  assert.ok(!hub.state.log.some((e) => /README|pytorch_model|onnx/.test(e.path)));
  // Progress, as single lines when stderr is not a terminal.
  assert.match(r.err, /pull loom-test\/tiny: .*MB/);

  // A second pull fetches nothing; --quiet prints nothing.
  hub.state.log.length = 0;
  const again = await loom(['pull', 'loom-test/tiny', '--quiet'], {cache});
  assert.equal(again.code, 0, again.err);
  assert.equal(again.err, '');
  assert.equal(hub.state.log.filter((e) => e.host === CDN_HOST).length, 0);

  // The model runs by name, offline, exactly as from its folder.
  const args = ['run', '-p', 'In the beginning', '-n', '12', '--temp', '0', '--json'];
  const byName = await loom([...args, '-m', 'loom-test/tiny'], {cache, env: {HF_HUB_OFFLINE: '1'}});
  const byPath = await loom([...args, '-m', MODEL], {cache});
  assert.equal(byName.code, 0, byName.err);
  assert.equal(JSON.parse(byName.out).text, JSON.parse(byPath.out).text);
  const inspect = await loom(['inspect', 'loom-test/tiny'], {cache, env: {HF_HUB_OFFLINE: '1'}});
  assert.equal(inspect.code, 0, inspect.err);
});

test('a renamed repository follows the Hub\'s redirect', async () => {
  const cache = freshCache('renamed');
  const r = await loom(['pull', 'loom-test/old-name'], {cache});
  assert.equal(r.code, 0, r.err);
  assert.ok(fs.existsSync(path.join(r.out.trim(), 'model.safetensors')));
});

test('a GGUF repository pulls only the quantization asked for', async () => {
  const cache = freshCache('gguf');
  hub.state.log.length = 0;
  const r = await loom(['pull', 'loom-test/tiny-GGUF:Q8_0'], {cache});
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.trim().endsWith('/tiny-Q8_0.gguf'), r.out);
  assert.ok(!hub.state.log.some((e) => e.path.includes('F16')));
  const run = await loom(['run', '-m', 'loom-test/tiny-GGUF:q8_0', '-p', 'And God said', '-n', '4',
                    '--temp', '0'], {cache, env: {HF_HUB_OFFLINE: '1'}});
  assert.equal(run.code, 0, run.err);
  // Several models and no tag that picks one: the error lists them.
  const none = await loom(['pull', 'loom-test/tiny-GGUF'], {cache});
  assert.notEqual(none.code, 0);
  assert.match(none.err, /tiny-F16\.gguf/);
  const missing = await loom(['pull', 'loom-test/tiny-GGUF:Q4_K_M'], {cache});
  assert.equal(missing.code, 4, missing.err);
  assert.match(missing.err, /no \.gguf file for Q4_K_M/);
});

test('an interrupted download resumes with Range', async () => {
  const cache = freshCache('resume');
  const sum = sha256(folderFiles['model.safetensors']);
  hub.state.cutOnce.add(sum);
  const first = await loom(['pull', 'loom-test/tiny'], {cache});
  assert.notEqual(first.code, 0);
  assert.match(first.err, /resumes/);
  const partial = path.join(repoDir(cache, 'loom-test/tiny'), 'blobs', `${sum}.incomplete`);
  const have = fs.statSync(partial).size;
  assert.ok(have > 0 && have < folderFiles['model.safetensors'].length, String(have));
  assert.ok(!fs.existsSync(path.join(repoDir(cache, 'loom-test/tiny'), 'refs/main')));

  hub.state.log.length = 0;
  const second = await loom(['pull', 'loom-test/tiny'], {cache});
  assert.equal(second.code, 0, second.err);
  assert.ok(hub.state.log.some((e) => e.host === CDN_HOST && e.range === `bytes=${have}-`),
            JSON.stringify(hub.state.log));
  const blob = path.join(repoDir(cache, 'loom-test/tiny'), 'blobs', sum);
  assert.equal(sha256(fs.readFileSync(blob)), sum);
  assert.ok(!fs.existsSync(partial));
});

test('pulls of one model at once fetch each blob once and all succeed', async () => {
  const cache = freshCache('concurrent');
  hub.state.log.length = 0;
  const runs = await Promise.all([1, 2, 3].map(() => loom(['pull', 'loom-test/tiny', '--quiet'],
                                                          {cache})));
  for (const r of runs) assert.equal(r.code, 0, r.err);
  assert.equal(new Set(runs.map((r) => r.out)).size, 1);
  const sum = sha256(folderFiles['model.safetensors']);
  const gets = hub.state.log.filter((e) => e.host === CDN_HOST && e.method === 'GET');
  assert.equal(gets.length, 1, JSON.stringify(gets));
  const blob = path.join(repoDir(cache, 'loom-test/tiny'), 'blobs', sum);
  assert.equal(sha256(fs.readFileSync(blob)), sum);
  // huggingface_hub's lock files, where it keeps them.
  assert.ok(fs.existsSync(path.join(cache, '.locks', 'models--loom-test--tiny', `${sum}.lock`)));
});

test('corrupt bytes fail the sha256 check and leave nothing behind', async () => {
  const cache = freshCache('corrupt');
  const sum = sha256(folderFiles['model.safetensors']);
  hub.state.corrupt.add(sum);
  try {
    const r = await loom(['pull', 'loom-test/tiny'], {cache});
    assert.equal(r.code, 3, r.err);
    assert.match(r.err, /sha256/);
    const blobs = path.join(repoDir(cache, 'loom-test/tiny'), 'blobs');
    assert.ok(!fs.existsSync(path.join(blobs, sum)));
    assert.ok(!fs.existsSync(path.join(blobs, `${sum}.incomplete`)));
    assert.ok(!fs.existsSync(path.join(repoDir(cache, 'loom-test/tiny'), 'refs/main')));
  } finally {
    hub.state.corrupt.delete(sum);
  }
});

test('gated and missing repositories are errors a person can act on', async () => {
  const cache = freshCache('gated');
  const denied = await loom(['pull', 'loom-test/gated'], {cache});
  assert.equal(denied.code, 2, denied.err);
  assert.match(denied.err, /gated or private/);
  assert.match(denied.err, /HF_TOKEN/);

  hub.state.log.length = 0;
  const ok = await loom(['pull', 'loom-test/gated'], {cache, env: {HF_TOKEN: 'hf_good'}});
  assert.equal(ok.code, 0, ok.err);
  const hubRequests = hub.state.log.filter((e) => e.host !== CDN_HOST);
  const cdnRequests = hub.state.log.filter((e) => e.host === CDN_HOST);
  assert.ok(hubRequests.every((e) => e.auth === 'Bearer hf_good'));
  assert.ok(cdnRequests.length > 0 && cdnRequests.every((e) => e.auth === null),
            'the token must not reach the storage host');

  const missing = await loom(['pull', 'loom-test/absent'], {cache});
  assert.equal(missing.code, 4, missing.err);
  assert.match(missing.err, /loom-test\/absent: the repository was not found/);
  // As -m, a name that is neither a local path nor on the Hub says both.
  const run = await loom(['run', '-m', 'loom-test/absent', '-p', 'x'], {cache});
  assert.equal(run.code, 4, run.err);
  assert.match(run.err, /no such file or folder, and as a Hugging Face model/);
  const offline = await loom(['run', '-m', 'loom-test/absent', '-p', 'x'],
                       {cache, env: {HF_HUB_OFFLINE: '1'}});
  assert.equal(offline.code, 4);
  assert.match(offline.err, /HF_HUB_OFFLINE/);
});
