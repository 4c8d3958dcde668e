// The browser client in Chromium: receiving on SSE and on WebSocket,
// subscribing from the browser on both, the inbox, the fallback from SSE
// to WebSocket, and the cursor kept across a page reload.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startService, launchBrowser, openClientPage, waitForState, waitForNotifications, titles, record, waitFor, until,
} from './lib/index.js';

describe('browser client: receive', () => {
  let svc;
  let browser;
  before(async () => {
    [svc, browser] = await Promise.all([startService(), launchBrowser()]);
  });
  after(async () => {
    await browser?.close();
    await svc?.stop();
  });

  const newContext = () => browser.newContext();

  for (const transport of ['sse', 'ws']) {
    test(`${transport}: notifications, broadcasts, subscribe and unsubscribe from the browser, the inbox`, async (t) => {
      const context = await newContext();
      t.after(() => context.close());
      const user = `recv-${transport}`;
      // 'team,eu': channel names may hold a comma (Laravel's and Pusher's rule).
      const page = await openClientPage(context, svc, { userId: user, channels: ['news', 'team,eu'], transport });
      await waitForState(page);
      const st = await page.evaluate(() => window.clients.main.status);
      assert.equal(st.transport, transport);
      assert.equal(st.leader, true);

      const first = await svc.send({ user_id: user, title: 'one', message: 'm1' });
      await svc.send({ channels: ['news'], title: 'news 1' });
      await svc.send({ channels: ['sports'], title: 'sports 0' }); // not subscribed: never arrives
      await svc.send({ channels: ['team,eu'], title: 'team' });
      await svc.send({ user_id: user, title: 'two' });
      assert.deepEqual(await waitForNotifications(page, 4), ['one', 'news 1', 'team', 'two']);

      // Subscribe from the browser (SSE: the REST call; WS: the action frame).
      await page.evaluate(() => window.clients.main.subscribe(['sports']));
      await svc.send({ channels: ['sports'], title: 'sports 1' });
      await waitForNotifications(page, 5);
      await page.evaluate(() => window.clients.main.unsubscribe('news'));
      await svc.send({ channels: ['news'], title: 'news 2' });
      await svc.send({ user_id: user, title: 'three' });
      assert.deepEqual(await waitForNotifications(page, 6), ['one', 'news 1', 'team', 'two', 'sports 1', 'three']);
      assert.deepEqual(await page.evaluate(() => window.clients.main.channels), ['team,eu', 'sports']);

      // The inbox, and the unread count kept live by the events.
      await until(page, () => window.clients.main.unreadCount === 3);
      const list = await page.evaluate(() => window.clients.main.inbox.list({ limit: 10 }));
      assert.deepEqual(list.notifications.map((n) => n.title), ['three', 'two', 'one']);
      await page.evaluate((id) => window.clients.main.inbox.markRead(id), first.id);
      await until(page, () => window.clients.main.unreadCount === 2);
      await page.evaluate((id) => window.clients.main.inbox.remove(id), first.id);
      await page.evaluate(() => window.clients.main.inbox.readAll());
      await until(page, () => window.clients.main.unreadCount === 0);
      const events = (await record(page)).events.map((e) => e.type);
      for (const e of ['subscribed', 'unsubscribed', 'read', 'deleted', 'read_all']) assert.ok(events.includes(e), `${e} in ${events}`);
      assert.deepEqual((await record(page)).errors, []);
    });
  }

  test('auto: SSE that never gets its ready falls back to WebSocket, and remembers it', async (t) => {
    const context = await newContext();
    t.after(() => context.close());
    // A proxy that holds the event stream back (buffering it whole).
    await context.route('**/sse?**', () => {});
    const page = await openClientPage(context, svc, { userId: 'fallback', transport: 'auto', readyTimeout: 1000 });
    await waitForState(page);
    const rec = await record(page);
    assert.equal(rec.statuses.at(-1).transport, 'ws');
    assert.ok(rec.statuses.some((s) => s.state === 'connecting' && s.transport === 'sse'), 'tried SSE first');
    assert.equal(await page.evaluate(() => sessionStorage.getItem(`notification-service:transport:${location.origin}`)), 'ws');
    await svc.send({ user_id: 'fallback', title: 'over ws' });
    assert.deepEqual(await waitForNotifications(page, 1), ['over ws']);
  });

  test('the cursor survives a page reload: what came meanwhile is replayed, nothing twice', async (t) => {
    const context = await newContext();
    t.after(() => context.close());
    const user = 'reload';
    let page = await openClientPage(context, svc, { userId: user, transport: 'sse' });
    await waitForState(page);
    await svc.send({ user_id: user, title: 'before' });
    await waitForNotifications(page, 1);
    await page.close();
    await waitFor(async () => (await svc.health()).connections === 0, { what: 'the stream to close' });

    await svc.send({ user_id: user, title: 'while away 1' });
    await svc.send({ user_id: user, title: 'while away 2' });
    page = await openClientPage(context, svc, { userId: user, transport: 'sse' });
    await waitForNotifications(page, 2);
    await svc.send({ user_id: user, title: 'after' });
    await waitForNotifications(page, 3);
    assert.deepEqual(await titles(page), ['while away 1', 'while away 2', 'after']);
  });

  test('a graceful restart in memory mode: the reconnect hint, then reset (the history is gone) and the inbox refetched', async (t) => {
    const own = await startService();
    t.after(() => own.stop());
    const context = await newContext();
    t.after(() => context.close());
    const user = 'memory-restart';
    const page = await openClientPage(context, own, { userId: user, transport: 'sse', backoff: { base: 100, cap: 500 } });
    await waitForState(page);
    await own.send({ user_id: user, title: 'lost with the process' });
    await waitForNotifications(page, 1);

    await own.restart({ graceful: true }); // SIGTERM: streams end with event: reconnect
    await until(page, () => window.rec.main.events.some((e) => e.type === 'reset'));
    const rec = await record(page);
    assert.ok(rec.statuses.some((s) => s.state === 'reconnecting' && s.reason === 'server_shutdown'), 'the reconnect hint');
    const reset = rec.events.find((e) => e.type === 'reset');
    assert.equal(reset.reason, 'cursor_expired');
    assert.deepEqual(reset.inbox.notifications, [], 'the refetched inbox (memory mode lost it)');
    await until(page, () => window.clients.main.unreadCount === 0);

    await own.send({ user_id: user, title: 'new epoch' });
    assert.deepEqual(await waitForNotifications(page, 2), ['lost with the process', 'new epoch']);
  });
});
