// The demo page (GET /) in Chromium: it renders, connects, sends a test
// notification, shows it live with the unread badge, marks read (the badge
// follows in a second tab), subscribes to a channel, deletes; a screenshot
// is kept under e2e/artifacts/ (never committed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, launchBrowser, artifactPath, recordConsole, until } from './lib/index.js';

test('demo page: live inbox, badge in sync across tabs, channels, send, delete', async (t) => {
  const [svc, browser] = await Promise.all([startService(), launchBrowser()]);
  t.after(() => svc.stop());
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const openDemo = async () => {
    const page = await context.newPage();
    page.consoleLines = recordConsole(page);
    await page.goto(`${svc.url}/?user_id=demo-e2e`);
    await until(page, () => document.querySelector('#status')?.dataset.state === 'open');
    return page;
  };
  const badge = (page) => page.locator('#badge').textContent();

  const tab1 = await openDemo();
  assert.equal(await tab1.title(), 'Notifications · notification-service');
  assert.match(await tab1.locator('#status').textContent(), /^Live · SSE/);
  await until(tab1, () => document.querySelector('#badge').textContent === '0');
  assert.equal(await tab1.locator('#empty').isVisible(), true);

  // Send two through the form: they appear live, newest first, unread.
  for (const title of ['Nueva Tarea Asignada', 'Recordatorio de Tarea']) {
    await tab1.fill('#send-title-input', title);
    await tab1.click('#send-button');
    await until(tab1, (title) => [...document.querySelectorAll('#inbox li .title')].some((e) => e.textContent === title), title);
  }
  await until(tab1, () => document.querySelector('#badge').textContent === '2');
  assert.deepEqual(await tab1.locator('#inbox li .title').allTextContents(), ['Recordatorio de Tarea', 'Nueva Tarea Asignada']);
  assert.equal(await tab1.locator('#inbox li.unread').count(), 2);

  // A second tab of the same user shares the connection and the inbox.
  const tab2 = await openDemo();
  await until(tab2, () => document.querySelectorAll('#inbox li').length === 2);
  assert.equal(await badge(tab2), '2');
  assert.equal((await svc.health()).connections, 1, 'two tabs, one connection');

  // Mark read in tab 1: the badge follows in tab 2. (The tab a person
  // uses is in front: actions wait for animation frames, which background
  // tabs do not get.)
  await tab1.bringToFront();
  await tab1.locator('#inbox li', { hasText: 'Nueva Tarea Asignada' }).locator('.mark-read').click();
  await until(tab2, () => document.querySelector('#badge').textContent === '1');
  await until(tab2, () => document.querySelectorAll('#inbox li.unread').length === 1);
  assert.equal(await badge(tab1), '1');

  // Subscribe to a channel with the picker, broadcast to it from the form.
  await tab1.locator('.chip[data-channel="orders"]').click();
  await until(tab1, () => document.querySelector('.chip[data-channel="orders"]').classList.contains('on'));
  await tab1.selectOption('#send-to', 'orders');
  await tab1.fill('#send-title-input', 'Pedido enviado');
  await tab1.fill('#send-message', 'Tu pedido #1042 va en camino');
  await tab1.click('#send-button');
  await until(tab1, () => [...document.querySelectorAll('#inbox li .title')].some((e) => e.textContent === 'Pedido enviado'));
  assert.equal(await badge(tab1), '1', 'a broadcast is not in the inbox');
  await tab1.selectOption('#send-to', '');
  await tab1.fill('#send-title-input', 'Pago recibido');
  await tab1.fill('#send-message', 'Factura #1042 pagada');
  await tab1.click('#send-button');
  await until(tab1, () => document.querySelector('#badge').textContent === '2');
  await tab1.screenshot({ path: artifactPath('demo.png'), fullPage: true });

  // Delete: gone from both tabs; read all: badges at 0.
  await tab2.bringToFront();
  await tab2.locator('#inbox li', { hasText: 'Recordatorio de Tarea' }).locator('.delete').click();
  await until(tab1, () => ![...document.querySelectorAll('#inbox li .title')].some((e) => e.textContent === 'Recordatorio de Tarea'));
  await tab2.click('#read-all');
  await until(tab1, () => document.querySelector('#badge').textContent === '0');
  await until(tab2, () => document.querySelector('#badge').textContent === '0');
  const inbox = await svc.request('GET', '/api/v1/notifications/user/demo-e2e');
  assert.deepEqual(inbox.body.notifications.map((n) => [n.title, n.read]), [['Pago recibido', true], ['Nueva Tarea Asignada', true]]);

  const errors = [...tab1.consoleLines, ...tab2.consoleLines].filter((l) => l.startsWith('pageerror') || l.startsWith('error'));
  assert.deepEqual(errors, []);
});
