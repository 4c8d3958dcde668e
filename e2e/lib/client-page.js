// A page running the browser client (/client.js, served by the service)
// that records everything the client reports, for tests to wait on.
import { originPage, recordConsole } from './browser.js';

/**
 * Opens a page of context on svc's origin and connects a client there with
 * options (connect()'s, JSON only). getTokenFrom: a URL whose JSON
 * {token} the client's getToken fetches (a context.route answers it).
 * Returns the page; in it, window.clients[key] is the client and
 * window.rec[key] what it reported: notifications, statuses, errors,
 * events (read, read_all, deleted, reset, subscribed, unsubscribed),
 * unread (its unread counts) and tokenCalls. page.consoleLines has the
 * page's console.
 */
export async function openClientPage(context, svc, options, { key = 'main' } = {}) {
  const page = await context.newPage();
  page.consoleLines = recordConsole(page);
  await page.goto(originPage(svc));
  await addClient(page, options, { key });
  return page;
}

/** Connects one more client in page, recorded under key. */
export async function addClient(page, options, { key }) {
  await page.evaluate(
    async ({ options, key }) => {
      const { connect } = await import('/client.js');
      window.clients ??= {};
      window.rec ??= {};
      const rec = { notifications: [], statuses: [], errors: [], events: [], unread: [], tokenCalls: 0 };
      window.rec[key] = rec;
      const o = { ...options };
      if (o.getTokenFrom) {
        const from = o.getTokenFrom;
        delete o.getTokenFrom;
        o.getToken = async () => {
          rec.tokenCalls++;
          const res = await fetch(from);
          return (await res.json()).token;
        };
      }
      const c = connect(o);
      window.clients[key] = c;
      c.on('notification', (n) => rec.notifications.push(n));
      c.on('status', (s) => rec.statuses.push({ ...s, error: undefined, at: Date.now() }));
      c.on('error', (e) => rec.errors.push({ code: e.code, status: e.status, fatal: e.fatal, message: e.message }));
      c.on('unread', (n) => rec.unread.push(n));
      for (const ev of ['read', 'read_all', 'deleted', 'reset', 'subscribed', 'unsubscribed']) {
        c.on(ev, (p) => rec.events.push({ ...p, type: ev }));
      }
    },
    { options, key },
  );
}

/**
 * page.waitForFunction polling on a timer: its default polls on animation
 * frames, which a background tab does not get (only one page of a context
 * is in front), and several tabs are the point of some tests.
 */
export function until(page, fn, arg, { timeout = 10000 } = {}) {
  return page.waitForFunction(fn, arg, { timeout, polling: 50 });
}

/** Waits until the client under key reports status state (default open). */
export function waitForState(page, state = 'open', { key = 'main', timeout = 10000 } = {}) {
  return until(page, ([k, s]) => window.clients?.[k]?.status.state === s, [key, state], { timeout });
}

/** Waits until the client under key has at least n notifications; returns their titles. */
export async function waitForNotifications(page, n, { key = 'main', timeout = 10000 } = {}) {
  await until(page, ([k, n]) => window.rec?.[k]?.notifications.length >= n, [key, n], { timeout });
  return titles(page, { key });
}

/** The titles of the notifications the client under key delivered, in order. */
export function titles(page, { key = 'main' } = {}) {
  return page.evaluate((k) => window.rec[k].notifications.map((n) => n.title), key);
}

/** What the client under key recorded. */
export function record(page, { key = 'main' } = {}) {
  return page.evaluate((k) => window.rec[k], key);
}
