// 429 then recovery: a connect over the per-user rate is refused with a
// delay to come back after; the client waits that long, then connects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, launchBrowser, openClientPage, addClient, waitForState, waitForNotifications, record } from './lib/index.js';

test('429 rate_limited: the client honours Retry-After, then connects and receives', async (t) => {
  const [svc, browser] = await Promise.all([
    startService({ env: { RATE_CONNECTS_PER_USER: '1', RATE_CONNECTS_PER_USER_BURST: '1' } }),
    launchBrowser(),
  ]);
  t.after(() => svc.stop());
  t.after(() => browser.close());
  const context = await browser.newContext();
  const user = 'limited';
  // Two clients of one user that do not share (as two browsers would),
  // started back to back: whichever connects second comes within the
  // second the rate allows one, and is refused.
  const options = { userId: user, transport: 'sse', shareConnection: false, backoff: { base: 100, cap: 400 } };
  const page = await openClientPage(context, svc, options);
  await addClient(page, options, { key: 'second' });
  await waitForState(page);
  await waitForState(page, 'open', { key: 'second' });

  const recs = [await record(page), await record(page, { key: 'second' })];
  const limited = recs.filter((r) => r.statuses.some((s) => s.state === 'reconnecting'));
  assert.equal(limited.length, 1, 'exactly one of the two was refused');
  const rec = limited[0];
  const refused = rec.statuses.find((s) => s.state === 'reconnecting');
  assert.equal(refused.reason, 'rate_limited');
  // The refusal comes as an event stream (what EventSource needs): its
  // retry_after_ms (Retry-After's second spread by up to half again, so a
  // storm does not come back at once) wins over the backoff, whose draws
  // stay below 400 ms.
  assert.ok(refused.retryIn >= 1000 && refused.retryIn < 1500, `retryIn ${refused.retryIn}`);
  const opened = rec.statuses.find((s) => s.state === 'open');
  assert.ok(opened.at - refused.at >= refused.retryIn, `waited ${opened.at - refused.at} ms`);
  assert.deepEqual(rec.errors.map((e) => [e.code, e.fatal]), [['rate_limited', false]]);

  await svc.send({ user_id: user, title: 'after the wait' });
  assert.deepEqual(await waitForNotifications(page, 1), ['after the wait']);
  assert.deepEqual(await waitForNotifications(page, 1, { key: 'second' }), ['after the wait']);
});
