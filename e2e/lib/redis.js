// A real redis-server on a free port, for tests of the service's Redis mode.
import { freePort } from './ports.js';
import { spawnTracked, stopChild } from './processes.js';
import { waitFor } from './wait.js';

/**
 * Starts redis-server on 127.0.0.1 with no persistence (the data lives as
 * long as this process: enough for the service to be killed and restarted
 * around it). Returns { url, port, lines, stop() }; url is what REDIS_URL
 * takes.
 */
export async function startRedis({ port } = {}) {
  port ??= await freePort();
  const lines = [];
  const child = spawnTracked(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'],
    { env: process.env, lines },
  );
  let exited = null;
  child.exited.then((code) => (exited = code));
  await waitFor(
    () => {
      if (exited !== null) throw new Error(`redis-server exited (${exited}): ${lines.slice(-5).join(' | ')}`);
      return lines.some((l) => l.includes('Ready to accept connections'));
    },
    { timeout: 10000, what: 'redis-server to accept connections' },
  );
  return {
    url: `127.0.0.1:${port}`,
    port,
    lines,
    stop: () => stopChild(child, 'SIGTERM', 5000),
  };
}
