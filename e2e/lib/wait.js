// Waiting on events with a deadline: tests never sleep to hope.

/** Rejects with a message naming what was awaited when ms pass first. */
export function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Calls check until it returns a truthy value (or a promise of one) and
 * returns that value; fails after timeout ms with the last value or error.
 * For state outside a page (a server's /health, a process); inside a page
 * use page.waitForFunction.
 */
export async function waitFor(check, { timeout = 10000, interval = 50, what = 'a condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= end) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}
