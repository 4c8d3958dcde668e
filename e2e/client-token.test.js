// Token mode: a stream whose token expires ends with token_expired; the
// client asks getToken() for a new token and resumes with nothing lost.
// Without getToken it stops with a clear status instead of looping.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startService, launchBrowser, mintToken, openClientPage, waitForState, waitForNotifications, record, until } from './lib/index.js';

const secret = 'e2e-secret-0123456789-0123456789-0123456789';
const apiKey = 'e2e-api-key-0123456789';
const tokenPath = '/__e2e__/token';

describe('browser client: token mode', () => {
  let svc;
  let browser;
  before(async () => {
    [svc, browser] = await Promise.all([startService({ env: { JWT_SECRET: secret, API_KEY: apiKey } }), launchBrowser()]);
  });
  after(async () => {
    await browser?.close();
    await svc?.stop();
  });

  /**
   * A context whose backend (a route the browser's fetch of tokenPath
   * reaches) mints a token for sub on each call, valid for expiresIn(n)
   * seconds on the n-th call; onCall(n) runs first.
   */
  async function contextWithTokens(sub, { channels, expiresIn = () => 3600, onCall = async () => {} } = {}) {
    const context = await browser.newContext();
    const calls = [];
    await context.route(`**${tokenPath}`, async (route) => {
      calls.push(Date.now());
      await onCall(calls.length);
      await route.fulfill({ json: { token: mintToken({ secret, sub, channels, expiresIn: expiresIn(calls.length) }) } });
    });
    return { context, calls };
  }

  // The server allows 5 s of clock skew past exp, so a token minted to
  // expire in 2 s ends its stream about 7 s from now: the three cases run
  // side by side to wait that out once.
  test('expiry: getToken on SSE and on WebSocket resumes from the cursor; no getToken stops', async () => {
    const cases = await Promise.all(
      ['sse', 'ws', 'none'].map(async (kind) => {
        const sub = `tok-${kind}`;
        // The first token getToken gives lives 2-3 s (exp is in whole
        // seconds; the client asks for it as it connects, so it is fresh
        // then, and still valid when the three cases' pages have
        // connected on a loaded machine); the refresh sends one more
        // notification first: it is published while the client has no
        // stream, and must come by the replay.
        const { context, calls } = await contextWithTokens(sub, {
          channels: ['orders.*'],
          expiresIn: (n) => (n === 1 ? 3 : 3600),
          onCall: (n) => n > 1 && svc.send({ user_id: sub, title: 'during refresh' }, { apiKey }),
        });
        const options = { transport: kind === 'ws' ? 'ws' : 'sse', backoff: { base: 100, cap: 500 } };
        if (kind === 'none') options.token = mintToken({ secret, sub, channels: ['orders.*'], expiresIn: 3 });
        else options.getTokenFrom = tokenPath;
        const page = await openClientPage(context, svc, options);
        await waitForState(page);
        await svc.send({ user_id: sub, title: 'before expiry' }, { apiKey });
        await waitForNotifications(page, 1);
        return { kind, sub, context, calls, page };
      }),
    );

    for (const { kind, sub, calls, page } of cases) {
      if (kind === 'none') {
        await until(page, () => window.clients.main.status.state === 'closed', null, { timeout: 15000 });
        const rec = await record(page);
        assert.equal(rec.statuses.at(-1).reason, 'token_expired');
        assert.ok(rec.errors.some((e) => e.code === 'token_expired' && e.fatal), JSON.stringify(rec.errors));
        assert.equal(calls.length, 0);
        continue;
      }
      await until(page, () => window.rec.main.tokenCalls >= 2, null, { timeout: 15000 });
      await until(page, () => window.rec.main.statuses.filter((s) => s.state === 'open').length >= 2, null, { timeout: 10000 });
      await svc.send({ user_id: sub, title: 'after refresh' }, { apiKey });
      assert.deepEqual(await waitForNotifications(page, 3), ['before expiry', 'during refresh', 'after refresh'], kind);
      const rec = await record(page);
      assert.equal(rec.tokenCalls, 2, `${kind}: the first token and one refresh, no loop`);
      const ended = rec.statuses.find((s) => s.state === 'reconnecting' || (s.state === 'connecting' && s.reason));
      assert.equal(ended.reason, 'token_expired', kind);
      assert.ok(!rec.statuses.some((s) => s.state === 'closed'), `${kind} never stopped`);
    }
    await Promise.all(cases.map((c) => c.context.close()));
  });

  test('channels: the token claim is checked before asking; WebSocket subscribes within it', async (t) => {
    const sub = 'tok-channels';
    const { context } = await contextWithTokens(sub, { channels: ['orders.*'] });
    t.after(() => context.close());
    const page = await openClientPage(context, svc, { getTokenFrom: tokenPath, transport: 'ws' });
    await waitForState(page);
    assert.equal(await page.evaluate(() => window.clients.main.userId), sub, 'the user is the token sub');
    const refused = await page.evaluate(() => window.clients.main.subscribe('payroll').then(() => null, (e) => e.code));
    assert.equal(refused, 'forbidden_channel');
    await page.evaluate(() => window.clients.main.subscribe('orders.eu'));
    await svc.send({ channels: ['orders.eu'], title: 'order' }, { apiKey });
    assert.deepEqual(await waitForNotifications(page, 1), ['order']);
    // The inbox with the token as Bearer.
    await svc.send({ user_id: sub, title: 'mine' }, { apiKey });
    await until(page, () => window.clients.main.unreadCount === 1);
  });

  // A user's token may change its OWN connection's channels over REST,
  // within its claim (issue 12).
  test('SSE subscribe with the user token (POST /api/v1/connections/{id}/subscribe)', async (t) => {
    const sub = 'tok-sse-sub';
    const { context } = await contextWithTokens(sub, { channels: ['orders.*'] });
    t.after(() => context.close());
    const page = await openClientPage(context, svc, { getTokenFrom: tokenPath, transport: 'sse' });
    await waitForState(page);
    await page.evaluate(() => window.clients.main.subscribe('orders.eu'));
    await svc.send({ channels: ['orders.eu'], title: 'order' }, { apiKey });
    assert.deepEqual(await waitForNotifications(page, 1), ['order']);
  });
});
