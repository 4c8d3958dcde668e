// The service under test: built once from this repository with `go build`,
// run as a real process on a free port with the environment a test gives.
import { execFile } from 'node:child_process';
import { mkdirSync, renameSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';
import { spawnTracked, stopChild } from './processes.js';
import { waitFor } from './wait.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

let built = null;

/**
 * Builds the service binary (once per test process; Go's build cache makes
 * a rebuild with nothing changed take about a second) and returns its
 * path. E2E_BINARY names a binary built already (scripts/test builds one
 * for every test file).
 */
export function buildService() {
  if (process.env.E2E_BINARY) return Promise.resolve(process.env.E2E_BINARY);
  built ??= (async () => {
    const dir = path.join(repoRoot, 'e2e', '.bin');
    mkdirSync(dir, { recursive: true });
    const out = path.join(dir, 'notification-service');
    // Build beside it, then rename: test files built in parallel never run
    // a half-written binary.
    const tmp = `${out}.${process.pid}`;
    await promisify(execFile)('go', ['build', '-o', tmp, '.'], { cwd: repoRoot, maxBuffer: 16 << 20 });
    renameSync(tmp, out);
    return out;
  })();
  return built;
}

/** Environment every test service starts with; a test's env overrides it. */
const baseEnv = {
  LOG_LEVEL: 'warn',
  SHUTDOWN_TIMEOUT: '5s',
};

/**
 * Starts the service and waits until /health answers 200.
 *
 *   const svc = await startService({ env: { JWT_SECRET: '…', API_KEY: '…' } });
 *   const redis = await startRedis();
 *   const svc2 = await startService({ env: { REDIS_URL: redis.url } });
 *   t.after(() => svc.stop());
 *
 * env is added to this process's environment (PORT is chosen unless
 * given). The Service returned: url, port, env, lines (its log), health(),
 * request(), send(), stop() (SIGTERM, graceful), kill() (SIGKILL),
 * start() (again, same port and env, after stop or kill).
 */
export async function startService({ env = {} } = {}) {
  const svc = new Service(await buildService(), env.PORT ? Number(env.PORT) : await freePort(), env);
  await svc.start();
  return svc;
}

export class Service {
  constructor(binary, port, env) {
    this.binary = binary;
    this.port = port;
    this.env = { ...baseEnv, ...env, PORT: String(port) };
    this.url = `http://127.0.0.1:${port}`;
    /** The service's log lines (stdout and stderr), across restarts. */
    this.lines = [];
    this.child = null;
  }

  /** Starts the process (again) and waits for /health to answer 200. */
  async start() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) throw new Error('service: already running');
    const child = spawnTracked(this.binary, [], { env: { ...process.env, ...this.env }, lines: this.lines });
    this.child = child;
    let exited = null;
    child.exited.then((code) => (exited = code));
    await waitFor(
      async () => {
        if (exited !== null) throw new Error(`service exited (${exited}): ${this.lines.slice(-5).join(' | ')}`);
        const res = await fetch(`${this.url}/health`);
        return res.status === 200;
      },
      { timeout: 15000, what: `the service on port ${this.port} to be healthy` },
    );
  }

  /** SIGTERM: the graceful shutdown (streams get their reconnect hint). */
  stop() {
    return this.child ? stopChild(this.child, 'SIGTERM', 15000) : Promise.resolve();
  }

  /** SIGKILL: the process dies mid-stream, as in a crash. */
  kill() {
    return this.child ? stopChild(this.child, 'SIGKILL') : Promise.resolve();
  }

  /** Kill (SIGKILL, or SIGTERM with graceful: true) and start again on the same port. */
  async restart({ graceful = false } = {}) {
    await (graceful ? this.stop() : this.kill());
    await this.start();
  }

  /** GET /health's JSON (its connections count is this instance's streams). */
  async health() {
    const res = await fetch(`${this.url}/health`);
    return res.json();
  }

  /**
   * One HTTP call: { status, headers, body } with body parsed as JSON when
   * it is. apiKey adds Authorization: Bearer <key>.
   */
  async request(method, urlPath, { body, headers = {}, apiKey } = {}) {
    const h = { ...headers };
    if (body !== undefined) h['Content-Type'] = 'application/json';
    if (apiKey) h.Authorization = `Bearer ${apiKey}`;
    const res = await fetch(this.url + urlPath, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  /**
   * POST /api/v1/notifications/send; fails the test unless 201. With
   * retry, connection failures, 503 and 429 are retried until the deadline
   * (give an idempotencyKey so a retry never sends twice).
   */
  async send(notification, { apiKey, idempotencyKey, retry = false, timeout = 15000 } = {}) {
    const headers = idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {};
    const attempt = async () => {
      const res = await this.request('POST', '/api/v1/notifications/send', { body: notification, headers, apiKey });
      if (res.status === 201) return res.body;
      const err = new Error(`send: ${res.status} ${JSON.stringify(res.body)}`);
      err.retryable = [429, 503].includes(res.status);
      throw err;
    };
    const end = Date.now() + timeout;
    for (;;) {
      try {
        return await attempt();
      } catch (err) {
        // fetch failed: the service is down (being restarted).
        const transient = err.retryable || err.message === 'fetch failed';
        if (!retry || !transient || Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  /** The last n log lines, for a failure message. */
  logTail(n = 30) {
    return this.lines.slice(-n).join('\n');
  }
}
