// Child processes the harness starts, killed if the test process dies
// without stopping them (a crash, an assertion outside t.after).
import { spawn } from 'node:child_process';
import { once } from 'node:events';

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone already
    }
  }
});

/**
 * Spawns cmd; its stdout and stderr lines go to lines (kept to the last
 * 2000). The returned child has .exited, a promise of its exit code (or
 * signal name).
 */
export function spawnTracked(cmd, args, { env, cwd, lines }) {
  const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop();
      lines.push(...parts);
      if (lines.length > 2000) lines.splice(0, lines.length - 2000);
    });
  }
  child.exited = once(child, 'exit').then(([code, signal]) => {
    live.delete(child);
    return code ?? signal;
  });
  return child;
}

/** Sends signal and waits for the exit, SIGKILL after timeout ms. */
export async function stopChild(child, signal = 'SIGTERM', timeout = 10000) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exited;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}
