// The client's reconnect loop against a scripted fetch: resume cursor,
// de-duplication of a replay, Retry-After, the server's reconnect hint,
// refusals that stop it. Node has no Web Locks, so the client runs on its
// own (one connection per tab), as it does in such a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../client.js';

const enc = new TextEncoder();

/** A fetch whose answers the test gives, one request at a time. */
function scriptedFetch() {
  const requests = [];
  const waiting = [];
  const fetch = (url, init = {}) =>
    new Promise((resolve, reject) => {
      const req = { url: new URL(url), init, resolve, reject };
      if (req.url.pathname.startsWith('/api/v1/notifications/user/')) {
        resolve(Response.json({ user_id: 'u1', notifications: [], total: 0, unread: 0, next_cursor: null }));
        return;
      }
      requests.push(req);
      waiting.shift()?.(req);
    });
  /** The next stream request, within a deadline. */
  fetch.next = () =>
    withDeadline(
      new Promise((resolve) => {
        const r = requests.shift();
        if (r) resolve(r);
        else waiting.push((req) => resolve(requests.splice(requests.indexOf(req), 1)[0]));
      }),
      'a request',
    );
  return fetch;
}

/** Answers req with an event stream the test writes to. */
function openStream(req) {
  let controller;
  const body = new ReadableStream({ start: (c) => (controller = c) });
  req.init.signal?.addEventListener('abort', () => {
    try {
      controller.error(new DOMException('aborted', 'AbortError'));
    } catch {
      // closed already
    }
  });
  req.resolve(new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }));
  return {
    write: (s) => controller.enqueue(enc.encode(s)),
    close: () => controller.close(),
  };
}

function withDeadline(promise, what, ms = 3000) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms))),
  ]);
}

/** Resolves with the first payload of event that satisfies pred. */
function next(client, event, pred = () => true) {
  return withDeadline(
    new Promise((resolve) => {
      const off = client.on(event, (p) => {
        if (pred(p)) {
          off();
          resolve(p);
        }
      });
    }),
    `${event} event`,
  );
}

const ready = (cursor) => `retry: 2000\nevent: ready\nid: ${cursor}\ndata: {"event":"ready","connection_id":"c1","user_id":"u1","channels":[],"cursor":"${cursor}"}\n\n`;
const note = (seq) => `id: ep-${seq}\ndata: {"event":"notification","cursor":"ep-${seq}","id":"n${seq}","type":"info","title":"t${seq}","user_id":"u1","timestamp":"2026-01-01T00:00:0${seq}.000Z"}\n\n`;

function newClient(fetch, extra = {}) {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
  const client = connect({
    url: 'http://svc.test',
    userId: 'u1',
    transport: 'sse',
    fetch,
    storage,
    shareConnection: false,
    backoff: { base: 50, cap: 200 },
    ...extra,
  });
  const got = [];
  client.on('notification', (n) => got.push(n.id));
  return { client, got, store };
}

test('resumes from the last cursor, drops the overlap, honours Retry-After and the reconnect hint', async (t) => {
  const fetch = scriptedFetch();
  const { client, got, store } = newClient(fetch);
  t.after(() => client.close());
  const statuses = [];
  client.on('status', (s) => statuses.push(`${s.state}${s.reason ? ':' + s.reason : ''}`));

  // First connection: no cursor yet; the server starts us at its head.
  let req = await fetch.next();
  assert.equal(req.url.pathname, '/sse');
  assert.equal(req.url.searchParams.get('user_id'), 'u1');
  assert.equal(req.url.searchParams.get('last_event_id'), null);
  let s = openStream(req);
  s.write(ready('ep-0') + note(1));
  s.write(note(2).slice(0, 20));
  s.write(note(2).slice(20));
  await next(client, 'notification', (n) => n.id === 'n2');
  assert.equal(store.get('notification-service:http://svc.test|u1:cursor'), 'ep-2', 'the cursor is persisted');
  s.close(); // the network drops the stream

  // The retry resumes from ep-2; the service is busy: 429, Retry-After 0.
  req = await fetch.next();
  assert.equal(req.url.searchParams.get('last_event_id'), 'ep-2');
  const waiting = next(client, 'status', (st) => st.state === 'reconnecting' && st.reason === 'rate_limited');
  req.resolve(Response.json({ error: { code: 'rate_limited', message: 'slow down' } }, { status: 429, headers: { 'Retry-After': '0' } }));
  assert.equal((await waiting).retryIn, 0, 'Retry-After wins over the backoff');

  // Then a 503 without Retry-After: a backoff draw within [0, ceiling).
  req = await fetch.next();
  const backing = next(client, 'status', (st) => st.state === 'reconnecting' && st.reason === 'store_unavailable');
  req.resolve(Response.json({ error: { code: 'store_unavailable', message: 'redis down' } }, { status: 503 }));
  const b = await backing;
  assert.ok(b.retryIn >= 0 && b.retryIn < 200, `retryIn ${b.retryIn}`);

  // Back: the replay overlaps what we have (2) and brings 3; the server then
  // shuts down with its reconnect hint.
  req = await fetch.next();
  assert.equal(req.url.searchParams.get('last_event_id'), 'ep-2');
  s = openStream(req);
  s.write(ready('ep-2') + note(2) + note(3) + 'event: reconnect\ndata: {"event":"reconnect","reason":"server_shutdown"}\n\n');
  await next(client, 'status', (st) => st.state === 'reconnecting' && st.reason === 'server_shutdown');

  req = await fetch.next();
  assert.equal(req.url.searchParams.get('last_event_id'), 'ep-3');
  s = openStream(req);
  s.write(ready('ep-3') + note(4));
  await next(client, 'notification', (n) => n.id === 'n4');

  assert.deepEqual(got, ['n1', 'n2', 'n3', 'n4'], 'every notification exactly once, in order');
  assert.ok(statuses.includes('open'));
  assert.equal(client.unreadCount, 0 + 4, 'four new notifications on top of the listed count');
});

test('a refusal that retrying cannot fix stops the client with a clear status', async (t) => {
  const fetch = scriptedFetch();
  const { client } = newClient(fetch, { channels: ['bad channel!'] });
  t.after(() => client.close());
  const req = await fetch.next();
  const closed = next(client, 'status', (st) => st.state === 'closed');
  const error = next(client, 'error');
  req.resolve(Response.json({ error: { code: 'validation_failed', message: 'bad channel', field: 'channels' } }, { status: 400 }));
  assert.equal((await closed).reason, 'validation_failed');
  const err = await error;
  assert.equal(err.status, 400);
  assert.equal(err.fatal, true);
});

test('an expired token without getToken stops; with getToken the client reconnects with a new one', async (t) => {
  const payload = (exp) => Buffer.from(JSON.stringify({ sub: 'u1', exp })).toString('base64url');
  const token = (exp) => `e30.${payload(exp)}.sig`;
  const later = Math.floor(Date.now() / 1000) + 3600;

  const f1 = scriptedFetch();
  const { client: c1 } = newClient(f1, { userId: undefined, token: token(later) });
  t.after(() => c1.close());
  let req = await f1.next();
  assert.equal(req.init.headers.Authorization, `Bearer ${token(later)}`);
  assert.equal(req.url.searchParams.get('user_id'), null, 'token mode names no user in the URL');
  let s = openStream(req);
  const stopped = next(c1, 'status', (st) => st.state === 'closed');
  s.write(ready('ep-0') + 'event: error\ndata: {"event":"error","code":"token_expired","message":"expired"}\n\n');
  assert.equal((await stopped).reason, 'token_expired');

  const f2 = scriptedFetch();
  let calls = 0;
  const { client: c2 } = newClient(f2, { userId: undefined, token: token(later), getToken: async () => token(later + ++calls) });
  t.after(() => c2.close());
  req = await f2.next();
  s = openStream(req);
  s.write(ready('ep-0') + note(1) + 'event: error\ndata: {"event":"error","code":"token_expired","message":"expired"}\n\n');
  req = await f2.next();
  assert.equal(calls, 1);
  assert.equal(req.init.headers.Authorization, `Bearer ${token(later + 1)}`);
  assert.equal(req.url.searchParams.get('last_event_id'), 'ep-1');
  // A 401 token_expired at connect time is the same story.
  req.resolve(Response.json({ error: { code: 'token_expired', message: 'expired' } }, { status: 401 }));
  req = await f2.next();
  assert.equal(calls, 2);
  assert.equal(req.init.headers.Authorization, `Bearer ${token(later + 2)}`);
});

test('channel names holding a comma go whole in channel= parameters', async (t) => {
  const fetch = scriptedFetch();
  const { client } = newClient(fetch, { channels: ['news', 'a,b', 'orders.eu'] });
  t.after(() => client.close());
  const req = await fetch.next();
  assert.equal(req.url.searchParams.get('channels'), 'news,orders.eu');
  assert.deepEqual(req.url.searchParams.getAll('channel'), ['a,b']);
  openStream(req).write(ready('ep-0'));
  await next(client, 'status', (s) => s.state === 'open');
});

test('a refused connect answered as an event stream (what EventSource needs) is retried after its retry_after_ms', async (t) => {
  const fetch = scriptedFetch();
  const { client } = newClient(fetch);
  t.after(() => client.close());
  const req = await fetch.next();
  const waiting = next(client, 'status', (st) => st.state === 'reconnecting' && st.reason === 'rate_limited');
  const s = openStream(req);
  s.write('retry: 1500\n\nevent: error\ndata: {"event":"error","code":"rate_limited","message":"too many connections from this address; retry later","retry_after_ms":1500}\n\n');
  s.close();
  assert.equal((await waiting).retryIn, 1500, "the server's delay wins over the backoff");
});
