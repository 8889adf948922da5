// Starts a real `loom serve` on a free loopback port for the server tests and stops it.
import {spawn} from 'node:child_process';
import path from 'node:path';

export const ROOT = process.env.LOOM_SOURCE_DIR;
export const BIN = process.env.LOOM_BIN;

export function modelPath(name) {
  return path.join(ROOT, 'tests/data/ref/models', name);
}

// `launcher`: a command line the server runs under (e.g. ['mpirun', '-np', '2']).
export async function startServer(args, {launcher = [], threads = 2} = {}) {
  if (!BIN || !ROOT) throw new Error('LOOM_BIN and LOOM_SOURCE_DIR must be set (run through ctest)');
  const cmd = [...launcher, BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '-t', String(threads),
               ...args];
  const proc = spawn(cmd[0], cmd.slice(1), {stdio: ['ignore', 'ignore', 'pipe']});
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${log}`)), 30000);
    proc.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => reject(new Error(`server exited (${code}): ${log}`)));
  });
  return {
    url,
    proc,
    log: () => log,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
      proc.kill('SIGTERM');
      return exited;
    },
  };
}

export async function metric(url, name, apiKey) {
  const res = await fetch(`${url}/metrics`, {headers: apiKey ? {Authorization: `Bearer ${apiKey}`} : {}});
  const text = await res.text();
  const m = text.match(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm'));
  return m ? Number(m[1]) : null;
}

export async function waitFor(fn, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
