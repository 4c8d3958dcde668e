// Laravel's notifications on Echo's .notification(): what a REST send to a
// user and Laravel's BroadcastNotificationCreated (through the Pusher HTTP
// API) become on private-App.Models.User.{id}, kept in the user's inbox,
// and delivered once per connection whatever mix of SSE, /ws and Echo the
// user has open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { startService, withDeadline } from './lib/index.js';
import { pusherEnv, pusherServer, startSigner, connectEcho, subscribed, recorder, deferrer } from './lib/echo.js';

const notificationEvent = 'Illuminate\\Notifications\\Events\\BroadcastNotificationCreated';

/** An EventSource of user's notifications: ready, then every notification in got. */
function sseOf(defer, svc, user) {
  const es = new EventSource(`${svc.url}/sse?user_id=${user}`);
  defer(() => es.close());
  const got = recorder(`SSE notifications of ${user}`);
  es.onmessage = (e) => got.record(JSON.parse(e.data));
  const ready = withDeadline(new Promise((resolve) => es.addEventListener('ready', resolve)), 5000, 'the SSE ready event');
  return { got, ready };
}

/** A /ws connection of user: ready, then every notification in got. */
function wsOf(defer, svc, user) {
  const ws = new WebSocket(`ws://127.0.0.1:${svc.port}/ws?user_id=${user}`);
  defer(() => ws.close());
  const got = recorder(`/ws notifications of ${user}`);
  const ready = withDeadline(
    new Promise((resolve) =>
      ws.on('message', (raw) => {
        const f = JSON.parse(raw);
        if (f.event === 'ready') resolve();
        if (f.event === 'notification') got.record(f);
      }),
    ),
    5000,
    'the /ws ready frame',
  );
  return { got, ready };
}

/** An Echo of user listening to its notifications. */
async function echoOf(defer, svc, signer, user) {
  const echo = await connectEcho(svc, signer, { user });
  defer(() => echo.stop());
  const got = recorder(`Echo notifications of ${user}`);
  await subscribed(echo.private(`App.Models.User.${user}`).notification(got.record));
  return { echo, got };
}

test(".notification() on private-App.Models.User.42 gets a REST send and Laravel's broadcast notification, which are in the inbox and reach SSE once", async (t) => {
  const defer = deferrer(t);
  const svc = await startService({ env: pusherEnv });
  defer(() => svc.stop());
  const signer = await startSigner();
  defer(() => signer.close());
  const sse = sseOf(defer, svc, '42');
  await sse.ready;
  const ana = await echoOf(defer, svc, signer, '42');
  const other = await echoOf(defer, svc, signer, '43');

  const sent = await svc.send({ user_id: '42', type: 'invoice.paid', title: 'Factura pagada', message: 'Gracias', data: { amount: 30 } });
  const rest = await ana.got.next(1);
  assert.equal(rest.id, sent.id);
  assert.equal(rest.type, 'invoice.paid');
  assert.equal(rest.title, 'Factura pagada');
  assert.equal(rest.message, 'Gracias');
  assert.equal(rest.amount, 30);

  // What Laravel's pusher/reverb broadcaster sends for
  // $user->notify(new InvoicePaid) with toBroadcast() => ['amount' => 40].
  const laravelID = randomUUID();
  await pusherServer(svc).trigger(`private-App.Models.User.42`, notificationEvent, { amount: 40, id: laravelID, type: 'App\\Notifications\\InvoicePaid' });
  const laravel = await ana.got.next(2);
  assert.equal(laravel.id, laravelID);
  assert.equal(laravel.type, 'App\\Notifications\\InvoicePaid');
  assert.equal(laravel.amount, 40);

  const inbox = await svc.request('GET', '/api/v1/notifications/user/42');
  assert.equal(inbox.status, 200);
  const byID = new Map(inbox.body.notifications.map((n) => [n.id, n]));
  assert.equal(byID.get(sent.id)?.type, 'invoice.paid');
  assert.equal(byID.get(laravelID)?.type, 'App\\Notifications\\InvoicePaid');
  assert.deepEqual(byID.get(laravelID)?.data, { amount: 40, id: laravelID, type: 'App\\Notifications\\InvoicePaid' });
  assert.equal(inbox.body.total, 2);

  // Once on SSE: a third notification arrives after exactly the two.
  const last = await svc.send({ user_id: '42', type: 'last', title: 'Last' });
  assert.equal((await sse.got.next(3)).id, last.id);
  assert.deepEqual(sse.got.got.map((n) => n.id), [sent.id, laravelID, last.id]);
  assert.equal((await ana.got.next(3)).id, last.id);
  assert.deepEqual(other.got.got, [], "user 43's Echo gets none of 42's");
});

test('the same user on SSE, /ws and two Echo tabs at once gets a notification once per connection', async (t) => {
  const defer = deferrer(t);
  const svc = await startService({ env: pusherEnv });
  defer(() => svc.stop());
  const signer = await startSigner();
  defer(() => signer.close());
  const sse = sseOf(defer, svc, '7');
  const ws = wsOf(defer, svc, '7');
  await Promise.all([sse.ready, ws.ready]);
  const tabs = [await echoOf(defer, svc, signer, '7'), await echoOf(defer, svc, signer, '7')];

  const first = await svc.send({ user_id: '7', type: 'first', title: 'One' });
  const second = await svc.send({ user_id: '7', type: 'second', title: 'Two' });
  // A duplicate of either would arrive before this one.
  const last = await svc.send({ user_id: '7', type: 'last', title: 'Last' });
  for (const got of [sse.got, ws.got, ...tabs.map((tab) => tab.got)]) {
    await got.next(3);
    assert.deepEqual(got.got.map((n) => n.id), [first.id, second.id, last.id]);
  }
  assert.equal((await svc.health()).connections, 4);
});
