// The service killed (SIGKILL) and restarted mid-stream, in Redis mode so
// nothing it stored is lost: each browser client, on SSE and on WebSocket,
// must end up with every notification exactly once, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startService, launchBrowser, openClientPage, waitForState, waitForNotifications, record } from './lib/index.js';

test('kill -9 and restart mid-stream: every notification exactly once, in order, on SSE and WS', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [svc, browser] = await Promise.all([startService({ env: { REDIS_URL: redis.url } }), launchBrowser()]);
  t.after(() => svc.stop());
  t.after(() => browser.close());

  const context = await browser.newContext();
  const users = { sse: 'restart-sse', ws: 'restart-ws' };
  const pages = {};
  for (const transport of ['sse', 'ws']) {
    // A short backoff keeps the test short; the policy is the same.
    pages[transport] = await openClientPage(context, svc, {
      userId: users[transport], channels: ['ops'], transport, backoff: { base: 100, cap: 1000 },
    });
  }
  await Promise.all(Object.values(pages).map((p) => waitForState(p)));

  // One notification to both users and one broadcast on their channel per
  // step; retried with the same Idempotency-Key while the service is down,
  // so a retry never sends twice.
  const expected = [];
  const step = async (i) => {
    await svc.send({ user_ids: Object.values(users), title: `n${i}` }, { idempotencyKey: `restart-n${i}`, retry: true });
    await svc.send({ channels: ['ops'], title: `b${i}` }, { idempotencyKey: `restart-b${i}`, retry: true });
    expected.push(`n${i}`, `b${i}`);
  };
  for (let i = 1; i <= 10; i++) await step(i);
  await Promise.all(Object.values(pages).map((p) => waitForNotifications(p, 20)));

  await svc.kill();
  const restarted = svc.start(); // sends below wait for it
  for (let i = 11; i <= 25; i++) await step(i);
  await restarted;
  for (let i = 26; i <= 30; i++) await step(i);

  for (const [transport, page] of Object.entries(pages)) {
    await waitForNotifications(page, expected.length, { timeout: 20000 });
    const rec = await record(page);
    assert.deepEqual(rec.notifications.map((n) => n.title), expected, `${transport}: exactly once, in order`);
    assert.ok(rec.statuses.some((s) => s.state === 'reconnecting'), `${transport} reconnected`);
    assert.equal(rec.events.filter((e) => e.type === 'reset').length, 0, `${transport} resumed without a reset`);
    assert.equal(rec.statuses.at(-1).state, 'open');
  }
});
