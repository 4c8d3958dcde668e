// Echo.join(): presence across two instances of the service on one Redis,
// what Reverb gets wrong when scaled (laravel/reverb#273). A user is one
// member however many tabs on however many instances; a member leaves when
// its last tab does, or within PRESENCE_LAPSE + PRESENCE_HEARTBEAT of its
// instance's death.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, startRedis, waitFor } from './lib/index.js';
import { pusherEnv, pusherServer, startSigner, connectEcho, recorder, deferrer } from './lib/echo.js';

const heartbeatMs = 200;
// What the leave may take beyond the bound: the sweeping instance's
// member_removed reaching ben's browser (measured 817-1,017 ms in all
// against a bound of 1,200 ms).
const deliverySlackMs = 400;
const lapseMs = 1000;

/**
 * user's tab on svc in presence-room.1: here (the first list), joining,
 * leaving (user ids) and the server's 'probe' events.
 */
async function joinRoom(defer, svc, signer, user) {
  const echo = await connectEcho(svc, signer, { user });
  defer(() => echo.stop());
  const here = recorder(`here of ${user}`);
  const joining = recorder(`joining seen by ${user}`);
  const leaving = recorder(`leaving seen by ${user}`);
  const probes = recorder(`probes seen by ${user}`);
  const whispers = recorder(`whispers heard by ${user}`);
  const room = echo
    .join('room.1')
    .here((members) => here.record(members.map((m) => m.id)))
    .joining((m) => joining.record(m.id))
    .leaving((m) => leaving.record(m.id))
    .listen('.probe', probes.record)
    .listenForWhisper('typing', whispers.record)
    .error((err) => here.record({ error: err }));
  const members = await here.next(1);
  assert.ok(Array.isArray(members), `${user} joined: ${JSON.stringify(members)}`);
  return { echo, room, socketId: echo.socketId(), members, joining, leaving, probes, whispers };
}

/**
 * Waits until svc has recorded the disconnect of socketId: by then it has
 * left its presence channels (the audit record comes last).
 */
function disconnected(svc, socketId) {
  return waitFor(() => svc.lines.some((l) => l.includes('action=disconnect') && l.includes(`connection_id=${socketId}`)), {
    what: `the disconnect of ${socketId}`,
  });
}

test('presence across two instances: one member per user over tabs and instances; a killed instance’s member leaves within the bound', async (t) => {
  const defer = deferrer(t);
  const redis = await startRedis();
  defer(() => redis.stop());
  const env = {
    ...pusherEnv,
    REDIS_URL: redis.url,
    PRESENCE_HEARTBEAT: `${heartbeatMs}ms`,
    PRESENCE_LAPSE: `${lapseMs}ms`,
    LOG_LEVEL: 'info', // the audit trail: when a connection has left
  };
  const [one, two] = await Promise.all([startService({ env }), startService({ env })]);
  defer(() => one.stop());
  defer(() => two.stop());
  const signer = await startSigner();
  defer(() => signer.close());
  const api = pusherServer(two);
  // A probe event sent after something happened on the channel arrives
  // after what that something broadcast: what has not arrived by then never
  // will.
  let probesSent = 0;
  const probe = async (...seers) => {
    probesSent++;
    await api.trigger('presence-room.1', 'probe', { n: probesSent });
    for (const s of seers) await s.probes.next(probesSent);
  };

  const ana1 = await joinRoom(defer, one, signer, 'ana');
  assert.deepEqual(ana1.members, ['ana']);
  const ben = await joinRoom(defer, two, signer, 'ben');
  assert.deepEqual(ben.members, ['ana', 'ben'], 'ben, on the other instance, sees ana');
  assert.equal(await ana1.joining.next(1), 'ben');
  // A whisper crosses instances too.
  ben.room.whisper('typing', { from: 'ben' });
  assert.deepEqual(await ana1.whispers.next(1), { from: 'ben' });

  // ana's second tab, on ben's instance: still one ana.
  const ana2 = await joinRoom(defer, two, signer, 'ana');
  assert.deepEqual(ana2.members, ['ana', 'ben']);
  await probe(ana1, ben, ana2);
  assert.deepEqual(ben.joining.got, [], 'no second joining for ana');
  assert.deepEqual(ana1.joining.got, ['ben']);

  // One of ana's tabs closes: she is still there.
  ana2.echo.stop();
  await disconnected(two, ana2.socketId);
  await probe(ana1, ben);
  assert.deepEqual(ben.leaving.got, [], 'closing one of two tabs is no leaving');
  // Her last tab closes: she leaves, once, for everyone.
  ana1.echo.stop();
  assert.equal(await ben.leaving.next(1), 'ana');
  await probe(ben);
  assert.deepEqual(ben.leaving.got, ['ana']);

  // cleo on instance one, which then dies without a word.
  const cleo = await joinRoom(defer, one, signer, 'cleo');
  assert.deepEqual(cleo.members, ['ben', 'cleo']);
  assert.equal(await ben.joining.next(1), 'cleo');
  const killedAt = performance.now();
  await one.kill();
  cleo.echo.stop(); // it would only retry a dead port
  assert.equal(await ben.leaving.next(2, lapseMs + heartbeatMs + deliverySlackMs), 'cleo');
  const tookMs = performance.now() - killedAt;
  t.diagnostic(`cleo left ${Math.round(tookMs)} ms after SIGKILL (bound: lapse ${lapseMs} ms + heartbeat ${heartbeatMs} ms, + ${deliverySlackMs} ms to reach the browser)`);
  assert.ok(tookMs <= lapseMs + heartbeatMs + deliverySlackMs, `cleo left after ${Math.round(tookMs)} ms`);
  await probe(ben);
  assert.deepEqual(ben.leaving.got, ['ana', 'cleo'], 'each leaving once');
});
