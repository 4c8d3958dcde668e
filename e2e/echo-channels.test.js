// Laravel Echo 2 with pusher-js 8, unchanged, on the service's Pusher
// protocol (GET /app/{key}): public and private channels, a forged channel
// signature, toOthers and whispers. Every "does not arrive" is proven by a
// later event on the same channel arriving first (one channel's events
// arrive in order), never by waiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, startRedis, waitFor } from './lib/index.js';
import { pusherEnv, pusherServer, startSigner, connectEcho, subscribed, recorder, redisCommand, deferrer } from './lib/echo.js';

const laravelPrefix = 'laravel_database_';

/** A Redis for Laravel's broadcaster, the service ingesting it, and a channel-auth signer; each stopped by defer. */
async function startWithLaravelRedis(defer) {
  const redis = await startRedis();
  defer(() => redis.stop());
  const svc = await startService({ env: { ...pusherEnv, LARAVEL_REDIS_URL: redis.url, LARAVEL_REDIS_PREFIX: laravelPrefix } });
  defer(() => svc.stop());
  const signer = await startSigner();
  defer(() => signer.close());
  return { redis, svc, signer };
}

/** Laravel's redis broadcaster: one PUBLISH per channel, on the prefixed name. Retried while nobody listens yet. */
async function laravelBroadcast(redis, channel, event, data, socket = null) {
  const payload = JSON.stringify({ event, data, socket });
  await waitFor(async () => (await redisCommand(redis.port, 'PUBLISH', laravelPrefix + channel, payload)) !== ':0', {
    what: 'the service to subscribe to Laravel’s broadcasts',
  });
}

test("Echo.channel('tareas').listen('.tarea.creada') gets events from the Pusher HTTP API, a REST send and Laravel's redis broadcaster", async (t) => {
  const defer = deferrer(t);
  const { redis, svc, signer } = await startWithLaravelRedis(defer);

  // Laravel 11's default (reverb) and the pusher broadcaster's options.
  const listeners = [];
  for (const broadcaster of ['reverb', 'pusher']) {
    const echo = await connectEcho(svc, signer, { broadcaster });
    defer(() => echo.stop());
    const got = recorder(`tarea.creada on ${broadcaster}`);
    const ch = echo.channel('tareas').listen('.tarea.creada', got.record);
    await subscribed(ch);
    assert.match(echo.socketId(), /^\d+\.\d+$/);
    listeners.push(got);
  }

  await pusherServer(svc).trigger('tareas', 'tarea.creada', { tarea: { id: 1 }, title: 'Por la API' });
  await svc.send({ channels: ['tareas'], type: 'tarea.creada', title: 'Por REST', data: { tarea: { id: 2 } } });
  await laravelBroadcast(redis, 'tareas', 'tarea.creada', { tarea: { id: 3 }, title: 'Por Redis' });

  for (const got of listeners) {
    const [api, rest, laravel] = [await got.next(1), await got.next(2), await got.next(3)];
    assert.deepEqual(api.tarea, { id: 1 });
    assert.equal(api.title, 'Por la API');
    assert.deepEqual(rest.tarea, { id: 2 });
    assert.equal(rest.title, 'Por REST');
    assert.equal(rest.type, 'tarea.creada');
    assert.deepEqual(laravel.tarea, { id: 3 });
    assert.equal(laravel.title, 'Por Redis');
    assert.equal(laravel.socket, undefined, 'Laravel’s socket key never reaches clients');
    for (const e of [api, rest, laravel]) assert.ok(e.id, 'each event carries its notification id');
    assert.equal(new Set([api.id, rest.id, laravel.id]).size, 3);
  }
});

test('a private channel works with a valid signature; a forged one is refused and the connection keeps its other channels', async (t) => {
  const defer = deferrer(t);
  const svc = await startService({ env: pusherEnv });
  defer(() => svc.stop());
  const signer = await startSigner({ forged: ['private-orders.2'] });
  defer(() => signer.close());
  const echo = await connectEcho(svc, signer, { user: '1' });
  defer(() => echo.stop());

  const orders1 = recorder('orders.1 events');
  const orders2 = recorder('orders.2 events');
  const refused = recorder('orders.2 subscription errors');
  const good = echo.private('orders.1').listen('.order.shipped', orders1.record);
  const tareas = recorder('tareas events');
  const pub = echo.channel('tareas').listen('.tarea.creada', tareas.record);
  echo.private('orders.2').listen('.order.shipped', orders2.record).error(refused.record);
  await Promise.all([subscribed(good), subscribed(pub)]);
  const err = await refused.next(1);
  assert.equal(err.type, 'AuthError');
  assert.equal(err.status, 401);

  const api = pusherServer(svc);
  await api.trigger('private-orders.2', 'order.shipped', { order: 2 });
  await api.trigger('private-orders.1', 'order.shipped', { order: 1 });
  await api.trigger('tareas', 'tarea.creada', { tarea: 1 });
  assert.equal((await orders1.next(1)).order, 1);
  assert.equal((await tareas.next(1)).tarea, 1);
  assert.deepEqual(orders2.got, [], 'the refused channel receives nothing');
  assert.equal(echo.connector.pusher.connection.state, 'connected');
});

test("toOthers: an event with one Echo's socket id reaches every other client, not that one", async (t) => {
  const defer = deferrer(t);
  const { redis, svc, signer } = await startWithLaravelRedis(defer);
  const clients = [];
  for (const user of ['1', '2', '3']) {
    const echo = await connectEcho(svc, signer, { user });
    defer(() => echo.stop());
    const got = recorder(`events of user ${user}`);
    const ch = echo.private('orders.1').listenToAll((event, data) => got.record({ event, ...data }));
    await subscribed(ch);
    clients.push({ echo, got });
  }
  const [sender, ...others] = clients;
  const api = pusherServer(svc);
  // The Pusher HTTP API (Laravel's reverb and pusher broadcasters), then
  // Laravel's redis broadcaster: both carry X-Socket-ID as the socket id.
  await api.trigger('private-orders.1', 'order.updated', { via: 'api' }, { socket_id: sender.echo.socketId() });
  await laravelBroadcast(redis, 'private-orders.1', 'order.updated', { via: 'redis' }, sender.echo.socketId());
  // The redis broadcaster's path is asynchronous (the service reads
  // Laravel's channel): the others have both before the last event goes.
  for (const { got } of others) {
    assert.deepEqual(new Set([await got.next(1), await got.next(2)].map((e) => `${e.event} ${e.via}`)), new Set(['.order.updated api', '.order.updated redis']));
  }
  await api.trigger('private-orders.1', 'order.closed', { via: 'api' });
  for (const { got } of others) assert.equal((await got.next(3)).event, '.order.closed');
  const first = await sender.got.next(1);
  assert.equal(first.event, '.order.closed', 'the sender skipped both events sent toOthers');
});

test('whisper reaches the other subscribers of a private channel, not the sender; a public channel refuses it; 4301 past the rate', async (t) => {
  const defer = deferrer(t);
  const svc = await startService({ env: pusherEnv });
  defer(() => svc.stop());
  const signer = await startSigner();
  defer(() => signer.close());
  const [ana, ben] = await Promise.all(['ana', 'ben'].map((user) => connectEcho(svc, signer, { user })));
  defer(() => ana.stop());
  defer(() => ben.stop());
  const anaTyping = recorder('whispers ana hears');
  const benTyping = recorder('whispers ben hears');
  const anaChat = ana.private('chat.1').listenForWhisper('typing', anaTyping.record);
  const benChat = ben.private('chat.1').listenForWhisper('typing', benTyping.record);
  await Promise.all([subscribed(anaChat), subscribed(benChat)]);

  anaChat.whisper('typing', { name: 'Ana' });
  assert.deepEqual(await benTyping.next(1), { name: 'Ana' });
  benChat.whisper('typing', { name: 'Ben' });
  assert.deepEqual(await anaTyping.next(1), { name: 'Ben' });
  assert.deepEqual(anaTyping.got, [{ name: 'Ben' }], 'ana never hears her own whisper, which went out before ben’s');

  // A public channel: pusher-js sends it (Echo's public channel has no
  // whisper), the service answers pusher:error and relays nothing.
  const anaErrors = recorder('errors ana gets');
  ana.connector.pusher.connection.bind('error', anaErrors.record);
  const benTareas = recorder('tareas events ben gets');
  const anaPublic = ana.channel('tareas');
  const benPublic = ben.channel('tareas').listenToAll((event, data) => benTareas.record({ event, data }));
  await Promise.all([subscribed(anaPublic), subscribed(benPublic)]);
  ana.connector.pusher.channel('tareas').trigger('client-typing', { name: 'Ana' });
  const refusal = await anaErrors.next(1);
  assert.equal(refusal.type, 'PusherError');
  assert.match(refusal.data.message, /private and presence channels only/);
  await pusherServer(svc).trigger('tareas', 'tarea.creada', {});
  assert.equal((await benTareas.next(1)).event, '.tarea.creada', 'the refused whisper reached nobody');

  // The client-event rate (10 a second with as much burst, as Pusher's):
  // each whisper of a burst past it is relayed or answered 4301, and the
  // connection stays.
  for (let i = 0; i < 15; i++) anaChat.whisper('typing', { n: i });
  const limited = () => anaErrors.got.filter((e) => e.data?.code === 4301).length;
  await waitFor(() => benTyping.got.length - 1 + limited() === 15, { what: 'every whisper of the burst relayed or refused' });
  // 15 at once against a bucket of 10 refilling at 10 a second: 5 refused
  // when the burst takes under 100 ms, fewer when the machine is slow.
  assert.ok(limited() >= 1, `${limited()} whispers refused with 4301`);
  assert.equal(ana.connector.pusher.connection.state, 'connected');
});
