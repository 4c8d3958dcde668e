// The dashboard (GET /dashboard) in Chromium, memory mode with an API key:
// it asks for the key and tells a wrong one apart, keeps it for the tab,
// shows the right counts after a scripted scenario (connections, sends,
// reads, a schedule it cancels), filters the audit trail, and streams it:
// one request held open, no polls of the trail, new events shown without a
// reload. Screenshots go to e2e/artifacts/ (never committed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { startService, launchBrowser, artifactPath, recordConsole, until, waitFor } from './lib/index.js';

const API_KEY = 'dashboard-e2e-key-0123456789';

test('dashboard: key, live counts after a scenario, audit filter, cancel', async (t) => {
  const [svc, browser] = await Promise.all([startService({ env: { API_KEY } }), launchBrowser()]);
  t.after(() => svc.stop());
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1360, height: 1500 } });
  const page = await context.newPage();
  const consoleLines = recordConsole(page);
  // The page's requests for the audit trail: the streams open now, and
  // every request to the polled JSON trail.
  const trail = { open: new Set(), streams: 0, polls: 0 };
  page.on('request', (r) => {
    const { pathname } = new URL(r.url());
    if (pathname === '/api/v1/dashboard/audit/stream') {
      trail.open.add(r);
      trail.streams++;
    } else if (pathname === '/api/v1/dashboard/audit') {
      trail.polls++;
    }
  });
  page.on('requestfinished', (r) => trail.open.delete(r));
  page.on('requestfailed', (r) => trail.open.delete(r));

  // Without a key: the prompt. A wrong key is told apart.
  await page.goto(`${svc.url}/dashboard`);
  await until(page, () => document.body.dataset.state === 'locked');
  assert.equal(await page.locator('#login').isVisible(), true);
  assert.equal(await page.locator('#board').isVisible(), false);
  await page.fill('#key', 'not-the-key-0000000000');
  await page.click('#login button[type=submit]');
  await until(page, () => document.body.dataset.state === 'locked' && /Wrong key/.test(document.querySelector('#login-error').textContent));
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a wrong key is not kept');
  await page.screenshot({ path: artifactPath('dashboard-wrong-key.png') });

  await page.fill('#key', API_KEY);
  await page.click('#login button[type=submit]');
  await until(page, () => document.body.dataset.state === 'live');
  assert.equal(await page.locator('#mode').textContent(), 'Memory mode');
  assert.equal(await page.locator('#instances tbody tr').count(), 1);

  // The scenario: 3 connections (2 SSE, 1 WebSocket), 5 sends (one to
  // two users, one to an offline user, one broadcast), 2 reads, a schedule.
  const streams = [];
  t.after(() => streams.forEach((s) => s.close()));
  const opened = (target) => new Promise((resolve, reject) => {
    target.addEventListener('ready', resolve, { once: true });
    target.addEventListener('error', reject, { once: true });
  });
  const ann = new EventSource(`${svc.url}/sse?user_id=ann&channels=news`);
  const bob = new EventSource(`${svc.url}/sse?user_id=bob`);
  const carl = new WebSocket(`${svc.url.replace('http', 'ws')}/ws?user_id=carl`);
  streams.push(ann, bob, carl);
  await Promise.all([opened(ann), opened(bob), new Promise((resolve) => carl.once('message', resolve))]);

  const send = (n) => svc.send(n, { apiKey: API_KEY });
  const t1 = await send({ type: 'tarea', title: 'Nueva Tarea', user_id: 'ann' });
  const t2 = await send({ type: 'tarea', title: 'Revisión', user_ids: ['ann', 'bob'] });
  await send({ type: 'tarea', title: 'Offline', user_id: 'dora' });
  await send({ type: 'news', title: 'Boletín', channels: ['news'] });
  await send({ type: 'alerta', title: 'Hola Carl', user_id: 'carl' });
  for (const [user, id] of [['ann', t1.id], ['bob', t2.id]]) {
    const res = await svc.request('PUT', `/api/v1/notifications/${user}/${id}/read`, { apiKey: API_KEY });
    assert.equal(res.status, 200);
  }
  const sched = await svc.request('POST', '/api/v1/notifications/schedule', {
    apiKey: API_KEY,
    body: { user_id: 'ann', type: 'recordatorio', title: 'Recordatorio de Tarea', scheduled_at: new Date(Date.now() + 3600e3).toISOString() },
  });
  assert.equal(sched.status, 201);

  // The page shows it within a few polls.
  await until(page, () => document.querySelector('#conn-total').textContent === '3');
  assert.equal(await page.locator('#conn-sse').textContent(), '2');
  assert.equal(await page.locator('#conn-ws').textContent(), '1');
  await until(page, () => document.querySelector('#pending').textContent === '1');
  const cells = (type) =>
    page.evaluate((type) => {
      const row = document.querySelector(`#analytics tfoot tr[data-type="${type}"]`);
      return row && ['sent', 'delivered', 'read', 'read-rate'].map((c) => row.querySelector(`.${c}`).textContent);
    }, type);
  await waitFor(async () => JSON.stringify(await cells('tarea')) === JSON.stringify(['4', '3', '2', '50%']), { what: 'tarea: 4 sent, 3 delivered, 2 read', timeout: 8000 });
  assert.deepEqual(await cells('news'), ['1', '1', '0', '0%']);
  assert.deepEqual(await cells('alerta'), ['1', '1', '0', '0%']);
  await until(page, () => Number(document.querySelector('#accepted-minute').textContent) >= 5);
  await page.screenshot({ path: artifactPath('dashboard.png'), fullPage: true });

  // The audit trail filtered by user: only bob's events.
  await page.fill('#f-user', 'bob');
  await until(page, () => [...document.querySelectorAll('#audit li')].map((li) => li.dataset.action).join() === 'read,send,delivery,connect');
  const texts = await page.locator('#audit li .what').allTextContents();
  assert.ok(texts.every((s) => s.includes('bob')), texts.join(' | '));
  await page.selectOption('#f-action', 'send');
  await page.fill('#f-user', '');
  await page.fill('#f-type', 'tarea');
  await until(page, () => {
    const items = [...document.querySelectorAll('#audit li')];
    return items.length === 3 && items.every((li) => li.dataset.action === 'send');
  });
  await page.screenshot({ path: artifactPath('dashboard-audit-filter.png'), fullPage: true });
  // Filtered by channel: only the events on news (ann's connection, the
  // broadcast's send and its delivery), none of the user-addressed ones.
  await page.selectOption('#f-action', '');
  await page.fill('#f-type', '');
  await page.fill('#f-channel', 'news');
  await until(page, () => [...document.querySelectorAll('#audit li')].map((li) => li.dataset.action).join() === 'send,delivery,connect');
  const channels = await page.evaluate(() =>
    [...document.querySelectorAll('#audit li .what')].map((what) =>
      [...what.children].find((span) => span.querySelector('.k')?.textContent === 'channels ')?.lastChild.textContent ?? null),
  );
  assert.deepEqual(channels, ['news', 'news', 'news']);

  // The trail is streamed: idle for 3 s, the page holds exactly one
  // request open to the stream, starts no other, and never polls the JSON
  // trail; an event made now appears on it without a reload.
  await page.click('#f-clear');
  await until(page, () => [...document.querySelectorAll('#audit li')].some((li) => li.dataset.action === 'read'));
  await waitFor(() => trail.open.size === 1, { what: 'one audit stream open' });
  const [stream] = trail.open;
  const started = trail.streams;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.equal(trail.open.size, 1, 'one audit stream open');
  assert.ok(trail.open.has(stream), 'the same audit stream, still open');
  assert.equal(trail.streams, started, 'no other audit stream started while idle');
  assert.equal(trail.polls, 0, 'the JSON trail is never polled');
  const live = await send({ type: 'alerta', title: 'En vivo', user_id: 'carl' });
  await until(page, (id) => {
    const top = document.querySelectorAll('#audit li[data-action="send"]')[0];
    return top?.textContent.includes(id);
  }, live.id);
  assert.ok(trail.open.has(stream), 'shown through the same stream');
  assert.equal(trail.polls, 0);

  // Cancel the schedule from the page.
  await page.locator('#schedules li .cancel').click();
  await until(page, () => document.querySelector('#pending').textContent === '0');
  assert.equal((await svc.request('GET', '/api/v1/schedules', { apiKey: API_KEY })).body.total, 0);

  // The key is kept for the tab: a reload goes straight to the board, and
  // it never appears in a URL the page asked for.
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));
  await page.reload();
  await until(page, () => document.body.dataset.state === 'live');
  assert.ok(urls.length > 0 && urls.every((u) => !u.includes(API_KEY)));
  await page.click('#forget-key');
  await until(page, () => document.body.dataset.state === 'locked');

  const errors = consoleLines.filter((l) => l.startsWith('pageerror') || (l.startsWith('error') && !l.includes('401')));
  assert.deepEqual(errors, []);
});

test('dashboard: open without API_KEY', async (t) => {
  const [svc, browser] = await Promise.all([startService(), launchBrowser()]);
  t.after(() => svc.stop());
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${svc.url}/dashboard`);
  await until(page, () => document.body.dataset.state === 'live');
  assert.equal(await page.locator('#login').isVisible(), false);
  assert.equal(await page.locator('#forget-key').isVisible(), false);
});
