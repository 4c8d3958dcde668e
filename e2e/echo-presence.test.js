// Echo.join(): presence across two instances of the service on one Redis,
// what Reverb gets wrong when scaled (laravel/reverb#273). A user is one
// member however many tabs on however many instances; a member leaves when
// its last tab does, or within PRESENCE_LAPSE + PRESENCE_HEARTBEAT of its
// instance's death.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, startRedis, waitFor } from './lib/index.js';
import { pusherEnv, pusherServer, startSigner, connectEcho, recorder, deferrer } from './lib/echo.js';

// Short, for a short test, and far enough apart that a loaded machine's
// stall does not lapse a live instance.
const heartbeatMs = 300;
const lapseMs = 1500;
// The bound is the service's promise, checked where it is kept: the
// surviving instance's sweep logs its removal within lapse + heartbeat of
// the kill, plus this for its timer and scripts on a busy machine.
const sweepSlackMs = 100;

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
  const killedAt = Date.now();
  await one.kill();
  cleo.echo.stop(); // it would only retry a dead port
  assert.equal(await ben.leaving.next(2, 10000), 'cleo'); // a hang guard: the bound is checked below
  const seenMs = Date.now() - killedAt;
  const sweep = two.lines.map((l) => /^time=(\S+) .*msg="presence: removed the members of dead instances"/.exec(l)).find(Boolean);
  assert.ok(sweep, 'instance two logged its sweep');
  const sweptMs = Date.parse(sweep[1]) - killedAt;
  t.diagnostic(`cleo removed ${sweptMs} ms after SIGKILL, seen in ben's browser after ${seenMs} ms (bound: lapse ${lapseMs} ms + heartbeat ${heartbeatMs} ms)`);
  assert.ok(sweptMs <= lapseMs + heartbeatMs + sweepSlackMs, `cleo removed after ${sweptMs} ms`);
  await probe(ben);
  assert.deepEqual(ben.leaving.got, ['ana', 'cleo'], 'each leaving once');
});
