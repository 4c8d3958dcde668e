// The dashboard in Redis mode, in Chromium: every instance reports itself
// through Redis, so a second instance appears on the first one's page and
// disappears once stopped (gracefully: at once; killed: within
// INSTANCE_LAPSE); a notification published on one instance and delivered
// on the other is counted once, sent and delivered, on either page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { startService, startRedis, launchBrowser, artifactPath, recordConsole, until, waitFor } from './lib/index.js';

test('dashboard, Redis mode: instances come and go, counts across instances', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const env = { REDIS_URL: redis.url, INSTANCE_HEARTBEAT: '250ms', INSTANCE_LAPSE: '1500ms' };
  const [a, b, browser] = await Promise.all([startService({ env }), startService({ env }), launchBrowser()]);
  t.after(() => a.stop());
  t.after(() => b.stop());
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1360, height: 1200 } });
  const consoleLines = recordConsole(page);
  // Every stats answer the page gets: when the server made it, and how
  // many instances it listed.
  const statsAnswers = [];
  page.on('response', async (res) => {
    if (!res.url().endsWith('/api/v1/dashboard/stats') || res.status() !== 200) return;
    const body = await res.json().catch(() => null);
    if (body) statsAnswers.push({ at: Date.parse(body.at), instances: body.instances.length });
  });
  await page.goto(`${a.url}/dashboard`);
  await until(page, () => document.body.dataset.state === 'live');
  assert.equal(await page.locator('#mode').textContent(), 'Redis mode');
  await until(page, () => /^Redis \d/.test(document.querySelector('#redis').textContent));
  await until(page, () => document.querySelectorAll('#instances tbody tr').length === 2);
  assert.equal(await page.locator('#instances tbody tr.self').count(), 1);

  // A stream on b, a send through a, a read through a.
  const es = new EventSource(`${b.url}/sse?user_id=ann`);
  t.after(() => es.close());
  await new Promise((resolve, reject) => {
    es.addEventListener('ready', resolve, { once: true });
    es.addEventListener('error', reject, { once: true });
  });
  const got = new Promise((resolve) => (es.onmessage = (e) => resolve(JSON.parse(e.data))));
  const sent = await a.send({ type: 'pedido', title: 'Pedido enviado', user_id: 'ann' });
  assert.equal((await got).id, sent.id);
  assert.equal((await a.request('PUT', `/api/v1/notifications/ann/${sent.id}/read`)).status, 200);
  await until(page, () => document.querySelector('#conn-sse').textContent === '1');
  await waitFor(
    () => page.evaluate(() => {
      const row = document.querySelector('#analytics tfoot tr[data-type="pedido"]');
      return row && ['sent', 'delivered', 'read'].map((c) => row.querySelector(`.${c}`).textContent).join() === '1,1,1';
    }),
    { what: 'pedido: 1 sent, 1 delivered, 1 read', timeout: 8000 },
  );
  // The trail holds both instances' events: the send on a, a delivery
  // record on each (b's reached the connection, a's none).
  await page.fill('#f-user', 'ann');
  await until(page, () => {
    const on = (action) => [...document.querySelectorAll(`#audit li[data-action="${action}"]`)].map((li) => li.dataset.instance);
    return on('send').length === 1 && new Set(on('delivery')).size === 2;
  });
  await page.screenshot({ path: artifactPath('dashboard-redis.png'), fullPage: true });

  // b stops gracefully: gone at the next poll. Back, then killed: gone
  // within INSTANCE_LAPSE.
  es.close();
  await b.stop();
  await until(page, () => document.querySelectorAll('#instances tbody tr').length === 1, null, { timeout: 3000 });
  await b.start();
  await until(page, () => document.querySelectorAll('#instances tbody tr').length === 2);
  await b.kill();
  const killed = Date.now(); // b's last heartbeat came before this
  await until(page, () => document.querySelectorAll('#instances tbody tr').length === 1, null, { timeout: 5000 }); // a hang guard
  t.diagnostic(`a killed instance left the page after ${Date.now() - killed} ms`);
  // INSTANCE_LAPSE is the promise: every stats answer made more than the
  // lapse after the kill lists one instance (when the page asks again is
  // the page's own pace, not the service's).
  const lapsed = killed + 1500 + 5;
  await waitFor(() => statsAnswers.some((a) => a.at > lapsed), { what: 'a stats answer made after the lapse', timeout: 5000 });
  const afterLapse = statsAnswers.filter((a) => a.at > lapsed);
  assert.deepEqual(afterLapse.map((a) => a.instances), afterLapse.map(() => 1), `stats answers after the lapse: ${JSON.stringify(afterLapse)}`);
  assert.equal(await page.locator('#instances tbody tr.self').count(), 1);

  const errors = consoleLines.filter((l) => l.startsWith('pageerror') || l.startsWith('error'));
  assert.deepEqual(errors, []);
});
