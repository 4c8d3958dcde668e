// Laravel Echo against the service, as a Laravel front end configures it:
// laravel-echo 2 with pusher-js 8 (their Node builds), the app's key, the
// service as wsHost/wsPort, and a tiny signer standing in for Laravel's
// /broadcasting/auth (npm `pusher`'s authorizeChannel signs exactly as
// Laravel's PusherBroadcaster does).
import http from 'node:http';
import net from 'node:net';
import Echo from 'laravel-echo';
import Pusher from 'pusher-js';
import PusherServer from 'pusher';
import { withDeadline } from './wait.js';

/** The Pusher app the service and the signer share (Laravel's REVERB_APP_*). */
export const echoApp = { appId: '1001', key: 'e2e-app-key', secret: 'e2e-app-secret-0123456789' };

/** The service's environment for echoApp. */
export const pusherEnv = { PUSHER_APP_ID: echoApp.appId, PUSHER_APP_KEY: echoApp.key, PUSHER_APP_SECRET: echoApp.secret };

/**
 * Cleanups that run last-registered first, as Go's t.Cleanup (node:test
 * runs t.after hooks in the order given): an Echo stops before the service
 * it is connected to. Stopped the other way round, pusher-js is told 4200
 * and reconnects, and a disconnect() then can leave it "connecting" for
 * good: the test process would never exit.
 *
 *   const defer = deferrer(t);
 *   const svc = await startService(...); defer(() => svc.stop());
 */
export function deferrer(t) {
  const fns = [];
  t.after(async () => {
    for (const fn of fns.reverse()) await fn();
  });
  return (fn) => fns.push(fn);
}

/** npm `pusher` (Laravel's broadcaster's counterpart) pointed at svc, signing with secret. */
export function pusherServer(svc, secret = echoApp.secret) {
  return new PusherServer({ ...echoApp, secret, host: '127.0.0.1', port: String(svc.port), useTLS: false });
}

/**
 * Starts the stand-in for Laravel's /broadcasting/auth: it reads the form
 * pusher-js posts (socket_id, channel_name) and the user from the
 * X-User-Id header (Laravel reads the session), and answers what
 * Broadcast::routes() would: a channel of the user's own
 * (private-App.Models.User.{id}) only for that user, a presence channel with
 * channel_data {user_id, user_info: {id, name}}, any other private channel
 * signed. Channels named in forged are signed with the wrong secret.
 * Resolves to { url, calls, close() }.
 */
export async function startSigner({ forged = [] } = {}) {
  const signers = { real: new PusherServer({ ...echoApp, useTLS: false }), forged: new PusherServer({ ...echoApp, secret: 'not-the-app-secret-012345', useTLS: false }) };
  const calls = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const socketId = form.get('socket_id');
      const channel = form.get('channel_name');
      const user = String(req.headers['x-user-id'] ?? '');
      calls.push({ user, socketId, channel });
      const own = /^private-App\.Models\.User\.(.+)$/.exec(channel);
      if (!user || (own && own[1] !== user)) {
        res.writeHead(403, { 'Content-Type': 'application/json' }).end('{"message":"This action is unauthorized."}');
        return;
      }
      const presence = channel.startsWith('presence-') ? { user_id: user, user_info: { id: user, name: `User ${user}` } } : undefined;
      const signer = forged.includes(channel) ? signers.forged : signers.real;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(signer.authorizeChannel(socketId, channel, presence)));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/broadcasting/auth`,
    calls,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * A Laravel front end's Echo connected to svc as user (the signer's
 * X-User-Id), exactly as resources/js/echo.js sets it up. broadcaster is
 * 'reverb' (Laravel 11's default) or 'pusher'. Resolves once connected;
 * the Echo has .stop() to disconnect it.
 */
export async function connectEcho(svc, signer, { user = '', broadcaster = 'reverb' } = {}) {
  const options = {
    broadcaster,
    key: echoApp.key,
    wsHost: '127.0.0.1',
    wsPort: svc.port,
    wssPort: svc.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    Pusher,
    channelAuthorization: { endpoint: signer.url, headers: { 'X-User-Id': user } },
  };
  // The pusher broadcaster needs a cluster, which wsHost overrides.
  if (broadcaster === 'pusher') options.cluster = 'mt1';
  const echo = new Echo(options);
  echo.stop = () => echo.disconnect();
  await connected(echo);
  return echo;
}

/** Waits until echo's pusher-js connection is connected (again). */
export function connected(echo, ms = 5000) {
  const conn = echo.connector.pusher.connection;
  if (conn.state === 'connected') return Promise.resolve(conn.socket_id);
  return withDeadline(
    new Promise((resolve) => {
      const on = ({ current }) => {
        if (current !== 'connected') return;
        conn.unbind('state_change', on);
        resolve(conn.socket_id);
      };
      conn.bind('state_change', on);
    }),
    ms,
    'Echo to connect',
  );
}

/** Resolves when the Echo channel's subscription succeeds; rejects on its error. */
export function subscribed(channel, ms = 5000) {
  return withDeadline(
    new Promise((resolve, reject) => {
      channel.subscribed(() => resolve());
      channel.error((err) => reject(new Error(`subscription error: ${JSON.stringify(err)}`)));
    }),
    ms,
    `the subscription to ${channel.name}`,
  );
}

/**
 * A recorder for a callback: record is the callback; next(n) resolves with
 * the n-th value (1-based) once it has arrived, or fails after ms.
 */
export function recorder(what) {
  const got = [];
  const waiters = [];
  const record = (v) => {
    got.push(v);
    for (const w of waiters.splice(0)) w();
  };
  const next = async (n, ms = 5000) => {
    while (got.length < n) await withDeadline(new Promise((r) => waiters.push(r)), ms, `${what} #${n} (got ${JSON.stringify(got)})`);
    return got[n - 1];
  };
  return { got, record, next };
}

/**
 * One Redis command over a fresh connection (RESP, no client library):
 * what Laravel's redis broadcaster sends is a PUBLISH. Resolves with the
 * reply line.
 */
export function redisCommand(port, ...args) {
  const req = `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
  return withDeadline(
    new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1', () => sock.write(req));
      let reply = '';
      sock.on('data', (d) => {
        reply += d;
        if (reply.endsWith('\r\n')) {
          sock.end();
          resolve(reply.trim());
        }
      });
      sock.on('error', reject);
    }),
    5000,
    `redis ${args[0]}`,
  );
}
