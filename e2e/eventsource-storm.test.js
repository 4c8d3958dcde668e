// A reconnect storm meets the per-address connect limit, and a PLAIN
// EventSource (no client library, in a real Chromium) comes back by itself
// and loses nothing: a refused connect is answered 200 with `retry:` and an
// error event, which EventSource follows, instead of a 429, after which it
// would stop for good (issue 15).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, startRedis, launchBrowser, originPage, until } from './lib/index.js';

// A browser holds six HTTP/1.1 connections per origin: five streams.
const TABS = 5;

test('plain EventSources over the connect limit come back by themselves, in a storm and after a restart, and miss nothing', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [svc, browser] = await Promise.all([
    // One page, one address: five streams against a burst of two and two
    // a second, as many clients behind one proxy would meet it.
    startService({ env: { REDIS_URL: redis.url, RATE_CONNECTS_PER_ADDR: '2', RATE_CONNECTS_PER_ADDR_BURST: '2' } }),
    launchBrowser(),
  ]);
  t.after(() => svc.stop());
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(originPage(svc));

  // Each EventSource records what it got, by notification id, and each
  // refusal it was told of.
  await page.evaluate((n) => {
    window.got = [];
    window.refused = [];
    window.sources = [];
    for (let i = 0; i < n; i++) {
      window.got[i] = [];
      window.refused[i] = 0;
      const es = new EventSource(`/sse?user_id=storm-${i}&channels=storm`);
      es.onmessage = (e) => window.got[i].push(JSON.parse(e.data).title);
      es.addEventListener('error', (e) => {
        if (e.data && JSON.parse(e.data).code === 'rate_limited') window.refused[i]++;
      });
      window.sources.push(es);
    }
  }, TABS);
  const health = async () => (await svc.health()).connections;
  await until(page, () => true); // the page runs
  await waitForConnections(health, TABS);
  const refusedAtStart = await page.evaluate(() => window.refused.reduce((a, b) => a + b, 0));
  assert.ok(refusedAtStart > 0, 'the storm met the limit');
  // None of them gave up (readyState 2 is CLOSED for good): each is open,
  // once the page has read the answers the server counted.
  await until(page, () => window.sources.every((s) => s.readyState === 1));

  await svc.send({ title: 'one', channels: ['storm'] });
  await until(page, (n) => window.got.every((g) => g.length === 1), TABS);

  // A restart drops every stream at once: they all come back with
  // Last-Event-ID, through the limit again, and get what was sent while
  // they were away.
  await svc.kill();
  await svc.start();
  await svc.send({ title: 'two', channels: ['storm'] });
  await svc.send({ title: 'three', channels: ['storm'] });
  await waitForConnections(health, TABS);
  await until(page, () => window.got.every((g) => g.length >= 3), null, { timeout: 20000 });
  await svc.send({ title: 'four', channels: ['storm'] });
  await until(page, () => window.got.every((g) => g.length >= 4), null, { timeout: 10000 });
  const got = await page.evaluate(() => window.got);
  for (const g of got) assert.deepEqual(g, ['one', 'two', 'three', 'four']); // each once, in order
  assert.ok(await page.evaluate(() => window.refused.reduce((a, b) => a + b, 0)) > refusedAtStart, 'the reconnect storm met the limit too');
});

async function waitForConnections(health, n) {
  const deadline = Date.now() + 20000;
  for (;;) {
    if ((await health()) === n) return;
    if (Date.now() > deadline) throw new Error(`fewer than ${n} streams after 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
