// A stand-in for the Hugging Face Hub on loopback, speaking the URL scheme and headers that
// huggingface_hub relies on:
//   GET  /api/models/ORG/NAME/revision/REV  -> {id, sha, siblings: [{rfilename}]}
//   HEAD/GET /ORG/NAME/resolve/REV/FILE     -> small files: 200, ETag = git blob sha1;
//        LFS files (.safetensors, .gguf): 302 to a second host name (the "CDN", mapped to
//        127.0.0.1 by the client), X-Linked-Etag = sha256, X-Linked-Size
//   GET  http://cdn.loom.test:PORT/cdn/SHA256 with Range: bytes=N- (206)
// Gated repositories answer 401 without the right token. Faults on demand: cut a transfer
// half way once, or serve corrupt bytes. Every request is logged for the test to inspect.
import crypto from 'node:crypto';
import http from 'node:http';

export const CDN_HOST = 'cdn.loom.test';

const isLfs = (file) => file.endsWith('.safetensors') || file.endsWith('.gguf');
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const gitSha1 = (b) =>
  crypto.createHash('sha1').update(Buffer.concat([Buffer.from(`blob ${b.length}\0`), b])).digest('hex');

// repos: {'org/name': {files: {path: Buffer}, gated: bool} | {movedTo: 'org/other'}};
// token: the one that opens gates.
export async function startFakeHub(repos, {token = 'hf_good'} = {}) {
  const state = {log: [], cutOnce: new Set(), corrupt: new Set(), blobs: new Map()};
  for (const [id, repo] of Object.entries(repos)) {
    if (repo.movedTo) continue;
    repo.commit = crypto.createHash('sha1').update(id).digest('hex');
    for (const [file, bytes] of Object.entries(repo.files)) {
      if (isLfs(file)) state.blobs.set(sha256(bytes), bytes);
    }
  }
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const host = (req.headers.host || '').split(':')[0];
    const entry = {method: req.method, host, path: url.pathname, range: req.headers.range || null,
                   auth: req.headers.authorization || null};
    state.log.push(entry);
    const send = (status, headers = {}, body = '') => {
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (host === CDN_HOST) return serveBlob(req, res, url, state, send);

    const api = url.pathname.match(/^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/);
    const resolve = url.pathname.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
    let id = api ? api[1] : resolve ? resolve[1] : null;
    // A renamed repository: its files redirect (relative, 307) to the new name's.
    if (id && repos[id] && repos[id].movedTo) {
      if (resolve) {
        return send(307, {'Location': url.pathname.replace(`/${id}/`, `/${repos[id].movedTo}/`)});
      }
      id = repos[id].movedTo;
    }
    const repo = id && repos[id];
    if (!repo) {
      return send(404, {'Content-Type': 'application/json', 'X-Error-Code': 'RepoNotFound'},
                  JSON.stringify({error: 'Repository not found'}));
    }
    if (repo.gated && req.headers.authorization !== `Bearer ${token}`) {
      return send(401, {'Content-Type': 'application/json', 'X-Error-Code': 'GatedRepo'},
                  JSON.stringify({error: `Access to model ${id} is restricted.`}));
    }
    const rev = decodeURIComponent(api ? api[2] : resolve[2]);
    if (rev !== 'main' && rev !== repo.commit) {
      return send(404, {'X-Error-Code': 'RevisionNotFound'}, JSON.stringify({error: 'Invalid rev id'}));
    }
    if (api) {
      return send(200, {'Content-Type': 'application/json'}, JSON.stringify({
        id, sha: repo.commit, siblings: Object.keys(repo.files).map((f) => ({rfilename: f})),
      }));
    }
    const file = decodeURIComponent(resolve[3]);
    const bytes = repo.files[file];
    if (!bytes) return send(404, {'X-Error-Code': 'EntryNotFound'}, 'Entry not found');
    const common = {'X-Repo-Commit': repo.commit};
    if (isLfs(file)) {
      const sum = sha256(bytes);
      const port = server.address().port;
      return send(302, {...common, 'ETag': `"${sum}"`, 'X-Linked-Etag': `"${sum}"`,
                        'X-Linked-Size': String(bytes.length),
                        'Location': `http://${CDN_HOST}:${port}/cdn/${sum}`});
    }
    return send(200, {...common, 'ETag': `"${gitSha1(bytes)}"`, 'Content-Length': bytes.length},
                bytes);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    endpoint: `http://127.0.0.1:${server.address().port}`,
    state,
    sha256,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

function serveBlob(req, res, url, state, send) {
  const sum = url.pathname.replace(/^\/cdn\//, '');
  let bytes = state.blobs.get(sum);
  if (!bytes) return send(404, {}, 'no such blob');
  if (state.corrupt.has(sum)) {
    bytes = Buffer.from(bytes);
    bytes[bytes.length >> 1] ^= 0xff;
  }
  let start = 0;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range || '');
  if (m) {
    start = Number(m[1]);
    if (start >= bytes.length) {
      return send(416, {'Content-Range': `bytes */${bytes.length}`});
    }
  }
  const body = bytes.subarray(start);
  const headers = {'Content-Length': body.length, 'Accept-Ranges': 'bytes'};
  if (m) headers['Content-Range'] = `bytes ${start}-${bytes.length - 1}/${bytes.length}`;
  res.writeHead(m ? 206 : 200, headers);
  if (req.method === 'HEAD') return res.end();
  if (state.cutOnce.has(sum)) {
    state.cutOnce.delete(sum);
    // Half the bytes, then the connection drops.
    res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 50));
    return;
  }
  res.end(body);
}
