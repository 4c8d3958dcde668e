// Pusher's own Node server library (npm `pusher`: it builds and signs the
// HTTP API requests exactly as Pusher defines them) against the service:
// trigger, several channels, a batch, socket_id exclusion, and a forged
// secret refused. Receivers are plain EventSources (npm `eventsource`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Pusher from 'pusher';
import { EventSource } from 'eventsource';
import { startService, withDeadline } from './lib/index.js';

const app = { appId: '1001', key: 'e2e-app-key', secret: 'e2e-app-secret-0123456789' };

function pusherClient(svc, secret = app.secret) {
  return new Pusher({ ...app, secret, host: '127.0.0.1', port: String(svc.port), useTLS: false });
}

/** An EventSource for user on channels, recording notifications and the ready event. */
function stream(svc, user, channels) {
  const es = new EventSource(`${svc.url}/sse?user_id=${user}&channels=${channels.join(',')}`);
  const got = [];
  const waiters = [];
  const ready = new Promise((resolve) => es.addEventListener('ready', (e) => resolve(JSON.parse(e.data))));
  es.onmessage = (e) => {
    got.push(JSON.parse(e.data));
    for (const w of waiters.splice(0)) w();
  };
  const next = async (n) => {
    while (got.length < n) await withDeadline(new Promise((r) => waiters.push(r)), 5000, `notification ${n}`);
    return got[n - 1];
  };
  return { es, got, ready, next };
}

test("Pusher's Node library triggers events that reach the service's streams", async (t) => {
  const svc = await startService({ env: { PUSHER_APP_ID: app.appId, PUSHER_APP_KEY: app.key, PUSHER_APP_SECRET: app.secret } });
  t.after(() => svc.stop());
  const a = stream(svc, 'ana', ['tareas', 'otros']);
  const b = stream(svc, 'ben', ['tareas']);
  t.after(() => {
    a.es.close();
    b.es.close();
  });
  const socketA = (await a.ready).connection_id;
  await b.ready;
  assert.match(socketA, /^\d+\.\d+$/, 'connection ids are Pusher socket ids');

  const pusher = pusherClient(svc);
  const res = await pusher.trigger('tareas', 'tarea.creada', { tarea: { id: 7, titulo: 'Revisar' }, title: 'Nueva tarea' });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {});
  for (const s of [a, b]) {
    const n = await s.next(1);
    assert.equal(n.type, 'tarea.creada');
    assert.equal(n.title, 'Nueva tarea');
    assert.deepEqual(n.data.tarea, { id: 7, titulo: 'Revisar' });
  }

  // Several channels at once: one notification, once per connection.
  await pusher.trigger(['tareas', 'otros'], 'both', { n: 2 });
  assert.equal((await a.next(2)).type, 'both');
  assert.equal((await b.next(2)).type, 'both');

  // A batch.
  const batch = await pusher.triggerBatch([
    { channel: 'tareas', name: 'first', data: { n: 3 } },
    { channel: 'otros', name: 'second', data: { n: 4 } },
  ]);
  assert.equal(batch.status, 200);
  assert.equal((await a.next(3)).type, 'first');
  assert.equal((await a.next(4)).type, 'second');
  assert.equal((await b.next(3)).type, 'first');

  // socket_id: everyone but ana's connection (Laravel's toOthers).
  await pusher.trigger('tareas', 'not-for-ana', { n: 5 }, { socket_id: socketA });
  await pusher.trigger('tareas', 'for-all', { n: 6 });
  assert.equal((await b.next(4)).type, 'not-for-ana');
  assert.equal((await b.next(5)).type, 'for-all');
  assert.equal((await a.next(5)).type, 'for-all'); // ana skipped one

  // The wrong secret: refused, nothing published.
  await assert.rejects(pusherClient(svc, 'not-the-secret-0123456789').trigger('tareas', 'forged', {}), (err) => err.status === 401);
  await pusher.trigger('tareas', 'last', {});
  assert.equal((await b.next(6)).type, 'last');
  assert.ok(!b.got.some((n) => n.type === 'forged'));
});
