// One connection per browser: three tabs (pages of one context share Web
// Locks, BroadcastChannel and localStorage like the tabs of one profile)
// hold ONE server connection with the union of their channels; the leader
// tab closes, another takes over from the shared cursor, nothing is lost or
// doubled; read state follows in every tab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, launchBrowser, openClientPage, waitForState, waitForNotifications, titles, record, waitFor, until } from './lib/index.js';

test('three tabs, one connection; the leader closes and another takes over without loss', async (t) => {
  const [svc, browser] = await Promise.all([startService(), launchBrowser()]);
  t.after(() => svc.stop());
  t.after(() => browser.close());
  const context = await browser.newContext();
  const user = 'tabs';
  const options = (channels) => ({ userId: user, channels, transport: 'sse', backoff: { base: 100, cap: 1000 } });

  const tabs = [];
  for (const channels of [['a'], ['b'], []]) {
    const page = await openClientPage(context, svc, options(channels));
    await waitForState(page);
    tabs.push(page);
  }
  const [t1, t2, t3] = tabs;
  const leaders = await Promise.all(tabs.map((p) => p.evaluate(() => window.clients.main.isLeader)));
  assert.deepEqual(leaders, [true, false, false]);
  const connections = () => svc.health().then((h) => h.connections);
  assert.equal(await connections(), 1, 'three tabs, one server connection');
  // The leader's connection holds the union of the tabs' channels.
  await until(t1, () => window.rec.main.events.some((e) => e.type === 'subscribed' && e.subscriptions.includes('b')));

  await svc.send({ user_id: user, title: 'u1' });
  await svc.send({ channels: ['a'], title: 'a1' });
  await svc.send({ channels: ['b'], title: 'b1' });
  assert.deepEqual(await waitForNotifications(t1, 2), ['u1', 'a1']);
  assert.deepEqual(await waitForNotifications(t2, 2), ['u1', 'b1']);
  assert.deepEqual(await waitForNotifications(t3, 1), ['u1']);

  // The leader tab goes away; notifications keep coming meanwhile. The
  // takeover is timed from the moment the leader tab is asked to close to
  // the new leader's first 'open' status (its stream's `ready`: the
  // connection is live), as the page stamped it (status.at, the same
  // machine's clock): neither the sends nor the test's polling count.
  const closedAt = Date.now();
  await t1.close();
  await svc.send({ user_id: user, title: 'u2' });
  await svc.send({ channels: ['b'], title: 'b2' });
  await until(t2, () => window.clients.main.isLeader && window.clients.main.status.state === 'open');
  const liveAt = (await record(t2)).statuses.find((s) => s.at >= closedAt && s.leader && s.state === 'open')?.at;
  assert.ok(liveAt != null, 'the new leader reported its stream open');
  const takeover = liveAt - closedAt;
  await svc.send({ user_id: user, title: 'u3' });
  await svc.send({ channels: ['b'], title: 'b3' });

  assert.deepEqual(await waitForNotifications(t2, 6), ['u1', 'b1', 'u2', 'b2', 'u3', 'b3']);
  assert.deepEqual(await waitForNotifications(t3, 3), ['u1', 'u2', 'u3']);
  await waitFor(async () => (await connections()) === 1, { what: 'one connection again' });
  // The closed tab's channel left the union (a peek at the new leader's
  // stream: what the server said its connection holds).
  await until(t2, () => window.clients.main.stream.serverChannels.join() === 'b');
  t.diagnostic(`leader takeover: ${takeover} ms`);
  // The issue asks for a takeover "within about a second".
  assert.ok(takeover < 1200, `takeover took ${takeover} ms`);

  // A follower's subscribe goes through the leader; only that tab gets
  // the channel's broadcasts.
  await t3.evaluate(() => window.clients.main.subscribe('c'));
  await svc.send({ channels: ['c'], title: 'c1' });
  await svc.send({ user_id: user, title: 'u4' });
  assert.deepEqual(await waitForNotifications(t3, 5), ['u1', 'u2', 'u3', 'c1', 'u4']);
  assert.deepEqual(await waitForNotifications(t2, 7), ['u1', 'b1', 'u2', 'b2', 'u3', 'b3', 'u4']);
  await t3.evaluate(() => window.clients.main.unsubscribe('c'));
  await until(t2, () => window.clients.main.stream.serverChannels.join() === 'b');

  // Read state in every tab: marking read in one updates the count in the other.
  await until(t3, () => window.clients.main.unreadCount === 4);
  const u2 = (await record(t3)).notifications.find((n) => n.title === 'u2');
  await t2.evaluate((id) => window.clients.main.inbox.markRead(id), u2.id);
  await until(t3, () => window.clients.main.unreadCount === 3);
  await until(t3, () => window.rec.main.events.some((e) => e.type === 'read'));
  assert.deepEqual(await titles(t3), ['u1', 'u2', 'u3', 'c1', 'u4'], 'still nothing doubled');

  // close() hands the connection over too, without the tab going away.
  await t2.evaluate(() => window.clients.main.close());
  await until(t3, () => window.clients.main.isLeader && window.clients.main.status.state === 'open');
  await svc.send({ user_id: user, title: 'u5' });
  assert.deepEqual(await waitForNotifications(t3, 6), ['u1', 'u2', 'u3', 'c1', 'u4', 'u5']);
  assert.equal((await record(t2)).statuses.at(-1).state, 'closed');
  await waitFor(async () => (await connections()) === 1, { what: 'one connection after close()' });
});
