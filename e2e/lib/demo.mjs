// Starts `rocketgate demo` on a free 127.0.0.1 port and stops it again.
//
// The demo binds the proxy to `--listen 127.0.0.1:0` and prints the real addresses (the
// proxy's "Open http://..." line and the stand-in's "stand-in provider http://..." line)
// on stdout, so the kernel picks the port and no port can be taken by someone else between
// "find a free port" and "bind". Readiness is polled on /ping; nothing sleeps a fixed time.

import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');
export const logDir = join(repoRoot, 'e2e', 'logs');

/** The rocketgate binary: $ROCKETGATE_BIN, else the release build in the cargo target dir. */
export function binaryPath() {
  if (process.env.ROCKETGATE_BIN) return process.env.ROCKETGATE_BIN;
  const target = process.env.CARGO_TARGET_DIR
    ? resolve(repoRoot, process.env.CARGO_TARGET_DIR)
    : join(repoRoot, 'target');
  return join(target, 'release', 'rocketgate');
}

/**
 * Polls `check` every `intervalMs` until it returns a truthy value or `timeoutMs` passes.
 * A throw is retried (the thing may not be up yet) unless the error is marked `fatal`.
 */
export async function waitFor(what, check, { timeoutMs = 10_000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      if (e.fatal) throw e;
      last = e;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** fetch with a time limit, for talking to the demo from Node. */
export function fetchWithin(url, init = {}, timeoutMs = 5_000) {
  return fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
}

/**
 * Starts `rocketgate demo --listen 127.0.0.1:0 ...extraArgs`; resolves once /ping answers.
 * Returns { proxy, standin, stats(), revoke(user), stop() }; `proxy` and `standin` are
 * origins like "http://127.0.0.1:41234". The demo's stderr goes to e2e/logs/<name>.log.
 */
export async function startDemo(name, extraArgs = []) {
  const bin = binaryPath();
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build it with cargo build --release`);
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(bin, ['demo', '--listen', '127.0.0.1:0', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', RUST_LOG_STYLE: 'never' },
  });
  child.stderr.pipe(log);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  // Never leave a demo behind, even if the test process dies on an uncaught error.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const died = () =>
    Object.assign(new Error(`rocketgate demo (${name}) exited early: ${JSON.stringify(exited)}; see ${logFile}`), {
      fatal: true,
    });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    log.write(d);
  });
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (exited === null) {
      // SIGKILL, not SIGTERM: a graceful stop keeps serving for shutdown_delay (5 s) first,
      // which only slows the suite down; the demo keeps nothing on disk.
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
    }
    log.end();
  };
  try {
    const addrs = await waitFor(
      `the addresses printed by rocketgate demo (${name})`,
      () => {
        if (exited) throw died();
        const proxy = out.match(/Open\s+(http:\/\/127\.0\.0\.1:\d+)\//);
        const standin = out.match(/stand-in provider\s+(http:\/\/127\.0\.0\.1:\d+)\//);
        return proxy && standin && { proxy: proxy[1], standin: standin[1] };
      },
      { timeoutMs: 15_000, intervalMs: 50 },
    );
    await waitFor(`${addrs.proxy}/ping (${name})`, async () => {
        if (exited) throw died();
      const r = await fetchWithin(`${addrs.proxy}/ping`, {}, 1_000);
      return r.status === 200;
    });
    const control = async (method, path) => {
      const r = await fetchWithin(`${addrs.standin}${path}`, { method });
      if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
      return r.json();
    };
    return {
      name,
      ...addrs,
      logFile,
      stats: () => control('GET', '/_standin/stats'),
      revoke: (user) => control('POST', `/_standin/revoke?user=${encodeURIComponent(user)}`),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
