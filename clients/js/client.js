/**
 * @notification-service/client: the browser client of notification-service.
 *
 * One ES module, no dependencies, no build step. `connect()` opens the user's
 * stream (SSE over fetch, or WebSocket), reconnects by itself on any failure
 * with exponential backoff and full jitter, resumes from the last cursor with
 * nothing lost or doubled (also across a page reload), refreshes its token
 * through `getToken()`, keeps a live unread count, and shares ONE server
 * connection between the tabs of a browser (a leader elected with the Web
 * Locks API relays every event over BroadcastChannel).
 *
 * The building blocks (Backoff, SSEParser, CursorTracker, parseRetryAfter)
 * are exported too; they touch no browser API, so Node's test runner tests
 * them directly. See README.md beside this file.
 *
 * Why one file of this size: it is served as it is at /client.js and
 * imported with no build step, so it cannot be split into modules that a
 * bundler would join. Its sections, in order: Backoff, SSE parser, cursor
 * tracking, errors and HTTP helpers, the stream (SSE and WebSocket), the
 * inbox, the tab leader and its relay, connect().
 */

export const VERSION = '0.1.0';

const PREFIX = 'notification-service';

// ---------------------------------------------------------------------------
// Backoff

/**
 * Exponential backoff with full jitter: the n-th delay (from 0) is drawn
 * uniformly from [0, min(cap, base * 2^n)). A server's Retry-After, when
 * given, wins over the drawn delay (the attempt still counts).
 */
export class Backoff {
  constructor({ base = 1000, cap = 30000, random = Math.random } = {}) {
    if (!(base > 0) || !(cap >= base)) {
      throw new RangeError('backoff: base must be > 0 and cap >= base');
    }
    this.base = base;
    this.cap = cap;
    this.random = random;
    this.attempt = 0;
  }

  /** The largest delay the next draw may return. */
  ceiling() {
    // 2^attempt overflows to Infinity long after it passes any cap.
    return Math.min(this.cap, this.base * 2 ** this.attempt);
  }

  /**
   * The delay before the next attempt, in milliseconds.
   * @param {{retryAfter?: number | null}} [opts] retryAfter in ms
   */
  next({ retryAfter = null } = {}) {
    const ceiling = this.ceiling();
    this.attempt = Math.min(this.attempt + 1, 1023);
    if (retryAfter != null && retryAfter >= 0) return retryAfter;
    return Math.floor(this.random() * ceiling);
  }

  /** Back to the first attempt: called once a connection proved stable. */
  reset() {
    this.attempt = 0;
  }
}

/**
 * Reads a Retry-After header (seconds, or an HTTP date) into milliseconds;
 * null when absent or unreadable.
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null) return null;
  const v = String(value).trim();
  if (v === '') return null;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // An HTTP date has a day and month name; Date.parse alone would take "-1".
  if (!/[A-Za-z]/.test(v)) return null;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return null;
  return Math.max(0, t - now);
}

// ---------------------------------------------------------------------------
// Cursors and de-duplication

/**
 * Splits a resume cursor `<epoch>-<sequence>` (the server's format); null
 * when it is not one. The sequence stays a decimal string: it may pass 2^53.
 */
export function parseCursor(s) {
  if (typeof s !== 'string' || s.length === 0 || s.length > 64) return null;
  const i = s.indexOf('-');
  if (i <= 0) return null;
  const epoch = s.slice(0, i);
  const seq = s.slice(i + 1);
  if (!/^[A-Za-z0-9]+$/.test(epoch) || !/^\d+$/.test(seq)) return null;
  return { epoch, seq: seq.replace(/^0+(?=\d)/, '') };
}

/** Compares two decimal strings without leading zeros: -1, 0 or 1. */
export function compareSeq(a, b) {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The newest cursor a client has delivered, and the ids it delivered
 * lately: `accept` says whether a notification is new. The server sends one
 * connection's notifications in cursor order, so anything at or before the
 * cursor (same epoch) was delivered already: a replay that overlaps, a
 * relayed event a tab got twice. A cursor of another epoch (the server's
 * history was reset) starts afresh.
 */
export class CursorTracker {
  constructor({ cursor = null, remember = 1000 } = {}) {
    this.value = parseCursor(cursor) ? cursor : null;
    this.remember = remember;
    this._ids = new Set();
  }

  /** Says whether the notification is new, and if so records it. */
  accept(cursor, id) {
    if (id != null && this._ids.has(id)) return false;
    const c = parseCursor(cursor);
    const cur = parseCursor(this.value);
    if (c && cur && c.epoch === cur.epoch && compareSeq(c.seq, cur.seq) <= 0) return false;
    if (c) this.value = cursor;
    if (id != null) {
      this._ids.add(id);
      if (this._ids.size > this.remember) {
        // A Set iterates in insertion order: drop the oldest.
        this._ids.delete(this._ids.values().next().value);
      }
    }
    return true;
  }

  /**
   * Takes the cursor a new connection starts from (its `ready` event): a
   * new epoch replaces ours, the same epoch never moves us back.
   */
  ready(cursor) {
    const c = parseCursor(cursor);
    if (!c) return;
    const cur = parseCursor(this.value);
    if (!cur || cur.epoch !== c.epoch || compareSeq(c.seq, cur.seq) > 0) this.value = cursor;
  }
}

// ---------------------------------------------------------------------------
// Server-Sent Events parser

/**
 * An incremental text/event-stream parser (the WHATWG HTML "event stream
 * interpretation"): feed it decoded text in chunks of any size; it calls
 * onEvent({type, data, id}) per event and onComment(text) per comment line.
 * Lines may end in LF, CR or CRLF, even a CRLF split across two chunks.
 */
export class SSEParser {
  /**
   * @param {(ev: {type: string, data: string, id: string}) => void} onEvent
   * @param {(text: string) => void} [onComment]
   */
  constructor(onEvent, onComment = () => {}) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.buffer = '';
    this.skipLF = false;
    this.started = false;
    this.type = '';
    this.data = '';
    this.hasData = false;
    /** The last event id seen (it persists across events, as in the spec). */
    this.lastEventId = '';
    /** The last `retry:` value in milliseconds, or null. */
    this.retry = null;
  }

  /** @param {string} chunk */
  push(chunk) {
    let s = this.buffer + chunk;
    let start = 0;
    if (!this.started && s.length > 0) {
      this.started = true;
      if (s.charCodeAt(0) === 0xfeff) start = 1;
    }
    if (this.skipLF && s.length > start) {
      if (s.charCodeAt(start) === 10) start++;
      this.skipLF = false;
    }
    for (let i = start; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this._line(s.slice(start, i));
      if (c === 13) {
        if (i + 1 < s.length) {
          if (s.charCodeAt(i + 1) === 10) i++;
        } else {
          this.skipLF = true; // a LF may open the next chunk
        }
      }
      start = i + 1;
    }
    this.buffer = s.slice(start);
  }

  /** The stream ended: an event not terminated by a blank line is dropped. */
  end() {
    this.buffer = '';
    this.type = '';
    this.data = '';
    this.hasData = false;
  }

  _line(line) {
    if (line === '') {
      this._dispatch();
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      this.onComment(line.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = line.indexOf(':');
    let field = line;
    let value = '';
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data += value + '\n';
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default: // unknown fields are ignored
    }
  }

  _dispatch() {
    if (!this.hasData) {
      this.type = '';
      return;
    }
    const data = this.data.endsWith('\n') ? this.data.slice(0, -1) : this.data;
    const ev = { type: this.type || 'message', data, id: this.lastEventId };
    this.type = '';
    this.data = '';
    this.hasData = false;
    this.onEvent(ev);
  }
}

// ---------------------------------------------------------------------------
// Small helpers

/** An error from the service or the client, with the API's error code. */
export class NotificationError extends Error {
  constructor(code, message, { status = 0, retryAfter = null, field = undefined, fatal = false } = {}) {
    super(message || code);
    this.name = 'NotificationError';
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
    this.field = field;
    this.fatal = fatal;
  }
}

class Emitter {
  constructor() {
    this.listeners = new Map();
  }
  on(event, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }
  off(event, fn) {
    this.listeners.get(event)?.delete(fn);
  }
  emit(event, payload) {
    for (const fn of [...(this.listeners.get(event) ?? [])]) {
      try {
        fn(payload);
      } catch (err) {
        // A listener's bug must not break the stream; report it the way
        // an uncaught error in an event handler is reported.
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}

/** Decodes a JWT's payload without verifying it (the server does). */
function decodeJwt(token) {
  try {
    const part = token.split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((part.length + 3) % 4);
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** Says whether a token's `channels` patterns allow channel (`*` matches any run). */
export function channelAllowed(patterns, channel) {
  if (!Array.isArray(patterns)) return false;
  return patterns.some((p) => {
    if (typeof p !== 'string') return false;
    const re = new RegExp('^' + p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 's');
    return re.test(channel);
  });
}

function normalizeChannels(channels) {
  if (channels == null) return [];
  const list = typeof channels === 'string' ? [channels] : [...channels];
  const out = [];
  for (const c of list) {
    if (typeof c !== 'string') throw new TypeError('channels must be strings');
    const t = c.trim();
    if (t && !out.includes(t)) out.push(t);
  }
  return out;
}

function randomId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

/** Reads an error answer ({"error":{code,message}}) into a NotificationError. */
async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  const e = body?.error ?? {};
  const code = e.code || `http_${res.status}`;
  return new NotificationError(code, e.message || `HTTP ${res.status}`, {
    status: res.status,
    retryAfter: parseRetryAfter(res.headers.get('Retry-After')),
    field: e.field,
  });
}

/** Refusals that retrying cannot fix: stop instead of looping. */
function isFatal(err) {
  if (err.status === 400 || err.status === 403) return true;
  return err.status === 401 && err.code !== 'token_expired';
}

function safeStorage(get) {
  try {
    return get() ?? null;
  } catch {
    return null; // storage disabled (privacy settings, sandboxed iframe)
  }
}

// ---------------------------------------------------------------------------
// Credentials

/** The user's identity: a user id (open mode) or a token and its refresher. */
class Credentials {
  constructor({ userId, token, getToken }) {
    if (getToken != null && typeof getToken !== 'function') throw new TypeError('getToken must be a function');
    this.getToken = getToken ?? null;
    this.explicitUser = userId != null ? String(userId) : null;
    this.token = null;
    this.claims = null;
    if (token != null) this.setToken(token);
    if (!this.explicitUser && !this.token && !this.getToken) {
      throw new TypeError('connect: give userId (open mode), or token and/or getToken (token mode)');
    }
    this.refreshing = null;
  }

  get tokenMode() {
    return this.token != null || this.getToken != null;
  }

  get userId() {
    if (this.explicitUser) return this.explicitUser;
    const sub = this.claims?.sub;
    return sub != null ? String(sub) : null;
  }

  setToken(token) {
    if (typeof token !== 'string' || token === '') throw new NotificationError('token_invalid', 'getToken must return a non-empty string');
    this.token = token;
    this.claims = decodeJwt(token);
  }

  /** Says whether the token has certainly expired (by its exp, on our clock). */
  expired() {
    const exp = this.claims?.exp;
    return typeof exp === 'number' && exp * 1000 <= Date.now();
  }

  /** A fresh token from getToken; concurrent callers share one call. */
  refresh() {
    if (!this.getToken) return Promise.reject(new NotificationError('token_expired', 'the token has expired and no getToken was given', { fatal: true }));
    this.refreshing ??= (async () => {
      try {
        this.setToken(await this.getToken());
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** The token to use now: fetched first when there is none or it expired. */
  async current() {
    if (!this.tokenMode) return null;
    if (this.token == null || (this.expired() && this.getToken)) await this.refresh();
    return this.token;
  }

  /** Says whether the token's claim lets the user subscribe to channel (true in open mode). */
  mayJoin(channel) {
    if (!this.tokenMode || !this.claims) return true;
    return channelAllowed(this.claims.channels, channel);
  }
}

// ---------------------------------------------------------------------------
// Stream: one logical connection to /sse or /ws across reconnects

/**
 * Holds the stream of one tab (the leader, or a tab on its own): connects,
 * reads, reconnects with backoff, refreshes the token, falls back from SSE
 * to WebSocket, and changes the live connection's channels. It reports raw
 * frames and status to its owner, which de-duplicates and delivers.
 */
class Stream {
  constructor(o) {
    this.o = o;
    this.backoff = new Backoff(o.backoff);
    this.stopped = false;
    this.connectionId = null;
    this.transport = null;
    this.serverChannels = [];
    this.openedAt = null;
    this.ws = null;
    this.pendingActions = [];
    this.abortCurrent = null;
    this.wakeSleep = null;
    this.refreshesWithoutReady = 0;
  }

  start() {
    this.done = this.run();
  }

  stop() {
    this.stopped = true;
    this.abortCurrent?.();
    this.wakeSleep?.();
  }

  /** Retry now if waiting (the browser says it is online again). */
  wake() {
    this.wakeSleep?.();
  }

  pickTransport() {
    const t = this.o.transport;
    if (t === 'sse' || t === 'ws') return t;
    if (!this.o.fetch || !globalThis.ReadableStream) return 'ws';
    const remembered = safeStorage(() => this.o.session?.getItem(this.o.transportKey));
    return remembered === 'ws' ? 'ws' : 'sse';
  }

  status(state, extra = {}) {
    this.o.onStatus({ state, transport: this.transport, connectionId: this.connectionId, ...extra });
  }

  async run() {
    let attempt = 0;
    let reason;
    while (!this.stopped) {
      this.transport = this.pickTransport();
      this.status('connecting', { attempt, reason });
      let outcome;
      try {
        await this.o.credentials.current();
        outcome = this.transport === 'ws' ? await this.wsOnce() : await this.sseOnce();
      } catch (err) {
        // getToken failed: back off and ask again.
        outcome = { reason: 'token_refresh_failed', error: err };
        this.o.onError(err instanceof NotificationError ? err : new NotificationError('token_refresh_failed', String(err?.message ?? err)));
        if (err?.fatal) outcome.fatal = true;
      }
      this.connectionId = null;
      if (this.stopped) break;
      attempt++;
      reason = outcome.reason;
      if (this.openedAt != null && Date.now() - this.openedAt >= this.o.stableAfter) this.backoff.reset();
      this.openedAt = null;

      if (outcome.fallback && this.o.transport === 'auto' && this.transport === 'sse') {
        // SSE does not get through (a buffering proxy, a blocked stream):
        // WebSocket for the rest of this browser session.
        safeStorage(() => this.o.session?.setItem(this.o.transportKey, 'ws'));
        continue;
      }
      if (outcome.tokenExpired) {
        if (!this.o.credentials.getToken) {
          this.fail(new NotificationError('token_expired', 'the token has expired and no getToken was given', { fatal: true }));
          return;
        }
        try {
          await this.o.credentials.refresh();
        } catch (err) {
          this.o.onError(err instanceof NotificationError ? err : new NotificationError('token_refresh_failed', String(err?.message ?? err)));
          if (err?.fatal) {
            this.fail(err);
            return;
          }
          outcome = { reason: 'token_refresh_failed' };
        }
        // A fresh token reconnects at once; a getToken that keeps handing
        // out dead tokens gets the backoff, not a loop.
        if (outcome.reason !== 'token_refresh_failed' && ++this.refreshesWithoutReady <= 2) continue;
      }
      if (outcome.fatal) {
        this.fail(outcome.error ?? new NotificationError(outcome.reason, outcome.reason, { fatal: true }));
        return;
      }
      const delay = this.backoff.next({ retryAfter: outcome.retryAfter });
      this.status('reconnecting', { reason, retryIn: delay, retryAt: Date.now() + delay, attempt });
      await this.sleep(delay);
    }
    this.status('closed', { reason: 'closed' });
  }

  fail(err) {
    err.fatal = true;
    this.stopped = true;
    this.o.onError(err);
    this.status('closed', { reason: err.code, error: err });
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakeSleep = null;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakeSleep = done;
    });
  }

  streamURL(path) {
    const u = new URL(this.o.url + path);
    const c = this.o.credentials;
    if (!c.tokenMode) u.searchParams.set('user_id', c.userId);
    // channels=a,b; a name holding a comma (Laravel and Pusher allow it)
    // goes whole in a channel= of its own.
    const channels = this.o.getChannels();
    const plain = channels.filter((c) => !c.includes(','));
    if (plain.length) u.searchParams.set('channels', plain.join(','));
    for (const c of channels) if (c.includes(',')) u.searchParams.append('channel', c);
    const cursor = this.o.getCursor();
    if (cursor) u.searchParams.set('last_event_id', cursor);
    return u;
  }

  /** The connection's `ready`: it is open, on this id, with these channels. */
  opened(ready) {
    this.connectionId = ready.connection_id ?? null;
    this.serverChannels = Array.isArray(ready.channels) ? ready.channels : [];
    this.openedAt = Date.now();
    this.refreshesWithoutReady = 0;
    this.o.onFrame('ready', ready);
    this.status('open');
    this.reconcile();
  }

  /** After a (re)connect: channels asked for meanwhile are subscribed now. */
  reconcile() {
    const want = new Set(this.o.getChannels());
    const have = new Set(this.serverChannels);
    const add = [...want].filter((c) => !have.has(c));
    const drop = [...have].filter((c) => !want.has(c));
    for (const [op, list] of [['subscribe', add], ['unsubscribe', drop]]) {
      if (list.length === 0) continue;
      this.changeChannels(op, list).catch((err) => {
        this.o.onError(err);
        if (op === 'subscribe' && (err.status === 403 || err.code === 'forbidden_channel')) this.o.onChannelsRefused(list, err);
      });
    }
  }

  /**
   * Changes the live connection's channels. Without a live connection
   * there is nothing to do: the next connection asks for the owner's
   * channels in its URL, and reconcile covers one already connecting.
   */
  async changeChannels(op, channels) {
    if (channels.length === 0 || !this.connectionId) return;
    if (this.transport === 'ws') {
      if (!this.ws) return;
      await this.wsAction(op, channels);
      return;
    }
    const id = this.connectionId;
    try {
      await this.o.request('POST', `/api/v1/connections/${encodeURIComponent(id)}/${op}`, { channels }, { asUser: true });
    } catch (err) {
      // The connection ended meanwhile (or the request could not be
      // made): the next connection asks for the channels in its URL.
      if (err.code === 'connection_not_found' || err.code === 'network_error') return;
      throw err;
    }
  }

  // --- SSE over fetch -------------------------------------------------------

  async sseOnce() {
    const ac = new AbortController();
    let outcome = null;
    const finish = (o) => {
      outcome ??= o;
      ac.abort();
    };
    this.abortCurrent = () => finish({ reason: 'closed' });
    const readyTimer = setTimeout(() => finish({ reason: 'no_ready', fallback: true }), this.o.readyTimeout);
    let idleTimer = null;
    const bump = () => {
      if (this.o.idleTimeout > 0) {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => finish({ reason: 'idle_timeout' }), this.o.idleTimeout);
      }
    };
    try {
      const headers = { Accept: 'text/event-stream' };
      const token = this.o.credentials.token;
      if (token) headers.Authorization = `Bearer ${token}`;
      const res = await this.o.fetch(this.streamURL('/sse'), {
        headers,
        signal: ac.signal,
        cache: 'no-store',
        credentials: this.o.fetchCredentials,
      });
      if (!res.ok) {
        const err = await errorOf(res);
        this.o.onError(err);
        // A refused token with a getToken to ask: a fresh token may pass
        // (an expired one surely, a rotated secret perhaps).
        const renew = err.status === 401 && (err.code === 'token_expired' || this.o.credentials.getToken != null);
        return outcome ?? { reason: err.code, error: err, retryAfter: err.retryAfter, tokenExpired: renew, fatal: !renew && isFatal(err) };
      }
      if (!(res.headers.get('Content-Type') || '').startsWith('text/event-stream') || !res.body) {
        return outcome ?? { reason: 'not_an_event_stream', fallback: true };
      }
      bump();
      const parser = new SSEParser((ev) => {
        const o = this.sseEvent(ev, readyTimer);
        if (o) finish(o);
      });
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      while (!outcome) {
        const { done, value } = await reader.read();
        if (done) break;
        bump();
        parser.push(decoder.decode(value, { stream: true }));
      }
      return outcome ?? { reason: 'stream_ended' };
    } catch (err) {
      return outcome ?? { reason: 'network_error', error: err };
    } finally {
      clearTimeout(readyTimer);
      clearTimeout(idleTimer);
      ac.abort();
      this.abortCurrent = null;
    }
  }

  /** One SSE event; returns an outcome when the stream is ending. */
  sseEvent(ev, readyTimer) {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      this.o.onError(new NotificationError('bad_event', `unreadable ${ev.type} event`));
      return null;
    }
    switch (ev.type) {
      case 'message':
        if (msg.cursor == null && ev.id) msg.cursor = ev.id;
        this.o.onFrame('notification', msg);
        return null;
      case 'ready':
        clearTimeout(readyTimer);
        this.opened(msg);
        return null;
      case 'reconnect':
        return { reason: msg.reason || 'server_shutdown' };
      case 'error': {
        // A refused connect (a limit met, an instance going away) comes as
        // a 200 stream with one error event saying when to come back.
        const retryAfter = Number.isFinite(msg.retry_after_ms) ? msg.retry_after_ms : null;
        const err = new NotificationError(msg.code || 'server_error', msg.message, { retryAfter });
        this.o.onError(err);
        // The server closes the stream after an error event.
        return { reason: err.code, retryAfter, tokenExpired: err.code === 'token_expired' };
      }
      default:
        this.control(ev.type, msg);
        return null;
    }
  }

  /** A control event; one about this connection's channels updates them. */
  control(type, msg) {
    if ((type === 'subscribed' || type === 'unsubscribed') && msg.connection_id === this.connectionId && Array.isArray(msg.subscriptions)) {
      this.serverChannels = msg.subscriptions;
    }
    this.o.onFrame(type, msg);
  }

  // --- WebSocket ------------------------------------------------------------

  wsOnce() {
    return new Promise((resolve) => {
      const u = this.streamURL('/ws');
      u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
      if (this.o.credentials.token) u.searchParams.set('token', this.o.credentials.token);
      let ws;
      try {
        ws = new this.o.WebSocket(u.toString());
      } catch (err) {
        resolve({ reason: 'network_error', error: err });
        return;
      }
      this.ws = ws;
      let outcome = null;
      let settled = false;
      let idleTimer = null;
      let pingTimer = null;
      const settle = (o) => {
        if (settled) return;
        settled = true;
        clearTimeout(readyTimer);
        clearTimeout(idleTimer);
        clearInterval(pingTimer);
        this.ws = null;
        this.abortCurrent = null;
        // Actions in flight die with the connection; the next one reconciles.
        for (const a of this.pendingActions.splice(0)) {
          clearTimeout(a.timer);
          a.resolve();
        }
        resolve(outcome ?? o);
      };
      // Ends the socket from our side without waiting for a closing
      // handshake a dead peer would never answer.
      const finish = (o) => {
        outcome ??= o;
        ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
        try {
          ws.close(1000);
        } catch {
          // already closing
        }
        settle(o);
      };
      this.abortCurrent = () => finish({ reason: 'closed' });
      const readyTimer = setTimeout(() => finish({ reason: 'no_ready' }), this.o.readyTimeout);
      const bump = () => {
        if (this.o.idleTimeout > 0) {
          clearTimeout(idleTimer);
          idleTimer = setTimeout(() => finish({ reason: 'idle_timeout' }), this.o.idleTimeout);
        }
      };
      ws.onopen = () => {
        bump();
        // A resumed WebSocket without channels waits up to 0.5 s for the
        // client's first frame before its catch-up: this one ends the wait.
        try {
          ws.send('{"action":"ping"}');
        } catch {
          // closing
        }
        // The browser answers the server's pings out of our sight; our own
        // pings are what tells us the peer is still there.
        if (this.o.pingInterval > 0) {
          pingTimer = setInterval(() => {
            try {
              ws.send('{"action":"ping"}');
            } catch {
              // closing
            }
          }, this.o.pingInterval);
        }
      };
      ws.onmessage = (e) => {
        bump();
        let msg;
        try {
          msg = JSON.parse(e.data);
        } catch {
          this.o.onError(new NotificationError('bad_event', 'unreadable WebSocket message'));
          return;
        }
        const o = this.wsMessage(msg, readyTimer);
        if (o) outcome ??= o;
      };
      ws.onclose = (e) => settle(closeOutcome(e.code, e.reason));
    });
  }

  wsMessage(msg, readyTimer) {
    switch (msg.event) {
      case 'ready':
        clearTimeout(readyTimer);
        this.opened(msg);
        return null;
      case 'notification':
        this.o.onFrame('notification', msg);
        return null;
      case 'pong':
        return null;
      case 'error': {
        const err = new NotificationError(msg.code || 'server_error', msg.message);
        if (err.code === 'token_expired') {
          this.o.onError(err);
          return { reason: 'token_expired', tokenExpired: true };
        }
        // An answer to one of our actions (the connection stays open).
        const a = this.pendingActions.shift();
        if (a) {
          clearTimeout(a.timer);
          a.reject(err);
        } else {
          this.o.onError(err);
        }
        return null;
      }
      case 'subscribed':
      case 'unsubscribed':
        if (msg.connection_id === this.connectionId) {
          const op = msg.event === 'subscribed' ? 'subscribe' : 'unsubscribe';
          const i = this.pendingActions.findIndex((a) => a.op === op);
          if (i >= 0) {
            const [a] = this.pendingActions.splice(i, 1);
            clearTimeout(a.timer);
            a.resolve();
          }
        }
        this.control(msg.event, msg);
        return null;
      default:
        this.control(msg.event, msg);
        return null;
    }
  }

  wsAction(op, channels) {
    return new Promise((resolve, reject) => {
      const a = { op, resolve, reject, timer: null };
      // No answer in time: the connection is in trouble and will be
      // replaced; its successor reconciles.
      a.timer = setTimeout(() => {
        const i = this.pendingActions.indexOf(a);
        if (i >= 0) this.pendingActions.splice(i, 1);
        resolve();
      }, 10000);
      this.pendingActions.push(a);
      try {
        this.ws.send(JSON.stringify({ action: op, channels }));
      } catch {
        clearTimeout(a.timer);
        this.pendingActions.splice(this.pendingActions.indexOf(a), 1);
        resolve();
      }
    });
  }
}

function closeOutcome(code, reason) {
  switch (code) {
    case 4001:
      return { reason: 'token_expired', tokenExpired: true };
    case 1012:
      return { reason: 'server_shutdown' };
    case 1013:
      return { reason: reason || 'try_again_later' };
    case 1006:
      return { reason: 'network_error' };
    default:
      return { reason: reason || `ws_close_${code}` };
  }
}

// ---------------------------------------------------------------------------
// Client: one per connect(); a tab's view of the shared stream

const DEFAULTS = {
  transport: 'auto',
  readyTimeout: 5000,
  idleTimeout: 90000,
  pingInterval: 25000,
  stableAfter: 5000,
  shareConnection: true,
  credentials: 'same-origin',
};

/**
 * Connects to the service and returns the client. Nothing throws later for
 * a network reason: failures show as `status` and `error` events.
 * @param {import('./client').ConnectOptions} options
 * @returns {import('./client').NotificationClient}
 */
export function connect(options) {
  return new Client(options);
}

class Client {
  constructor(options = {}) {
    const o = { ...DEFAULTS, ...options };
    const base = o.url ?? globalThis.location?.origin;
    if (!base) throw new TypeError('connect: url is required outside a browser page');
    this.url = String(base).replace(/\/+$/, '');
    if (!['auto', 'sse', 'ws'].includes(o.transport)) throw new TypeError("connect: transport must be 'auto', 'sse' or 'ws'");
    this.options = o;
    this.credentials = new Credentials(o);
    this.storage = o.storage === undefined ? safeStorage(() => globalThis.localStorage) : o.storage;
    this.session = safeStorage(() => globalThis.sessionStorage);
    this.fetch = o.fetch ?? globalThis.fetch?.bind(globalThis);
    this.WebSocket = o.WebSocket ?? globalThis.WebSocket;

    this.events = new Emitter();
    this.tabId = randomId();
    // Replaced in start(), once the user (maybe a token's sub) is known.
    this.tracker = new CursorTracker();
    this.myChannels = new Set(normalizeChannels(o.channels));
    for (const c of this.myChannels) {
      if (!this.credentials.mayJoin(c)) throw new NotificationError('forbidden_channel', `the token does not allow channel "${c}"`, { status: 403, field: 'channels' });
    }
    this.unread = null;
    // The ids of inbox entries listed or counted lately, and the time of
    // the newest entry the unread count includes.
    this.inboxIds = new Set();
    this.countedUpTo = null;
    // Notifications to the user delivered lately, numbered: a listing
    // in flight adds those it may have missed.
    this.recent = [];
    this.delivered = 0;
    this.unreadRefresh = null;
    this.closed = false;
    this.currentStatus = { state: 'connecting', leader: false, shared: false, attempt: 0 };
    this.role = null;
    this.stream = null;
    // Leader's view of every tab's channels: tabId -> Set.
    this.members = new Map([[this.tabId, this.myChannels]]);
    this.pending = new Map();
    this.stops = [];

    this.inbox = {
      list: (opts) => this.listInbox(opts),
      markRead: async (id) => this.request('PUT', `/api/v1/notifications/${await this.userPath()}/${encodeURIComponent(id)}/read`),
      readAll: async () => this.request('PUT', `/api/v1/notifications/${await this.userPath()}/read-all`),
      remove: async (id) => this.request('DELETE', `/api/v1/notifications/${await this.userPath()}/${encodeURIComponent(id)}`),
    };

    if (globalThis.addEventListener) {
      const online = () => this.stream?.wake();
      globalThis.addEventListener('online', online);
      this.stops.push(() => globalThis.removeEventListener('online', online));
    }
    // Start after the caller has attached its listeners.
    queueMicrotask(() => this.start().catch((err) => this.emitError(err, false)));
  }

  get cursorKey() {
    return `${this.key}:cursor`;
  }

  /**
   * Names what this user's tabs share (the leader lock, the channel, the
   * stored cursor): the service's url and the user. With only a getToken,
   * the first token tells who the user is.
   */
  async bindUser() {
    if (!this.credentials.userId) {
      try {
        await this.credentials.current();
      } catch (err) {
        this.emitError(err instanceof NotificationError ? err : new NotificationError('token_refresh_failed', String(err?.message ?? err)), false);
      }
    }
    this.key = `${PREFIX}:${this.url}|${this.credentials.userId ?? 'token'}`;
    this.tracker = new CursorTracker({ cursor: safeStorage(() => this.storage?.getItem(this.cursorKey)) });
  }

  // --- public API -----------------------------------------------------------

  on(event, fn) {
    return this.events.on(event, fn);
  }

  off(event, fn) {
    this.events.off(event, fn);
  }

  get status() {
    return this.currentStatus;
  }

  get unreadCount() {
    return this.unread;
  }

  get channels() {
    return [...this.myChannels];
  }

  get cursor() {
    return this.tracker.value;
  }

  get userId() {
    return this.credentials.userId;
  }

  get isLeader() {
    return this.role === 'leader' || this.role === 'standalone';
  }

  get connectionId() {
    return this.currentStatus.connectionId ?? null;
  }

  async subscribe(channels) {
    const list = normalizeChannels(channels);
    for (const c of list) {
      if (!this.credentials.mayJoin(c)) throw new NotificationError('forbidden_channel', `the token does not allow channel "${c}"`, { status: 403, field: 'channels' });
    }
    if (list.length === 0) return this.channels;
    if (this.role !== 'follower') {
      await this.changeMember(this.tabId, 'subscribe', list);
      return this.channels;
    }
    // A follower filters what the leader relays by its own channels: take
    // them at once, since the first relayed notification may come before
    // the leader's answer.
    const added = list.filter((c) => !this.myChannels.has(c));
    added.forEach((c) => this.myChannels.add(c));
    try {
      await this.askLeader('subscribe', list);
    } catch (err) {
      added.forEach((c) => this.myChannels.delete(c));
      throw err;
    }
    return this.channels;
  }

  async unsubscribe(channels) {
    const list = normalizeChannels(channels);
    if (list.length === 0) return this.channels;
    if (this.role !== 'follower') {
      await this.changeMember(this.tabId, 'unsubscribe', list);
      return this.channels;
    }
    list.forEach((c) => this.myChannels.delete(c));
    await this.askLeader('unsubscribe', list);
    return this.channels;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.stream?.stop();
    this.post({ t: 'bye', tab: this.tabId, channels: this.channels });
    for (const stop of this.stops.splice(0)) {
      try {
        stop();
      } catch {
        // best effort
      }
    }
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new NotificationError('closed', 'the client was closed'));
    }
    this.pending.clear();
    this.setStatus({ state: 'closed', reason: 'closed', transport: this.currentStatus.transport ?? null });
  }

  // --- roles ----------------------------------------------------------------

  async start() {
    await this.bindUser();
    if (this.closed) return;
    this.refreshUnread().catch(() => {});
    const locks = globalThis.navigator?.locks;
    const canShare = this.options.shareConnection && locks?.request && typeof globalThis.BroadcastChannel === 'function';
    if (!canShare) {
      this.role = 'standalone';
      this.startStream();
      return;
    }
    this.bc = new BroadcastChannel(this.key);
    this.bc.onmessage = (e) => this.onMessage(e.data);
    this.stops.push(() => this.bc.close());
    this.role = 'follower';
    this.setStatus({ ...this.currentStatus, shared: true });

    // Every tab holds a lock of its own while it lives: the leader asks
    // navigator.locks.query() which tabs are still there.
    const abort = new AbortController();
    this.stops.push(() => abort.abort());
    let releaseTab;
    const tabHeld = new Promise((r) => (releaseTab = r));
    this.stops.push(() => releaseTab());
    locks
      .request(`${this.key}:tab:${this.tabId}`, { signal: abort.signal }, () => {
        if (!this.closed) this.post({ t: 'hello', tab: this.tabId, channels: this.channels });
        return tabHeld;
      })
      .catch(() => {});
    // The leader lock: granted to one tab at a time, held while it lives,
    // handed to the next waiting tab when it closes.
    let releaseLeader;
    const leading = new Promise((r) => (releaseLeader = r));
    this.stops.push(() => releaseLeader());
    locks
      .request(this.key, { signal: abort.signal }, async () => {
        if (this.closed) return;
        await this.becomeLeader();
        return leading;
      })
      .catch(() => {});
  }

  async becomeLeader() {
    this.role = 'leader';
    this.members.set(this.tabId, this.myChannels);
    await this.pruneMembers();
    if (this.closed) return;
    this.startStream();
    this.post({ t: 'leader', tab: this.tabId });
    this.postMembers();
    const prune = setInterval(() => this.pruneMembers(), 5000);
    this.stops.push(() => clearInterval(prune));
  }

  startStream() {
    const o = this.options;
    this.stream = new Stream({
      url: this.url,
      credentials: this.credentials,
      transport: o.transport,
      backoff: o.backoff,
      readyTimeout: o.readyTimeout,
      idleTimeout: o.idleTimeout,
      pingInterval: o.pingInterval,
      stableAfter: o.stableAfter,
      fetch: this.fetch,
      WebSocket: this.WebSocket,
      fetchCredentials: o.credentials,
      session: this.session,
      transportKey: `${PREFIX}:transport:${this.url}`,
      getChannels: () => [...this.union()],
      getCursor: () => this.tracker.value,
      request: (...args) => this.request(...args),
      onFrame: (type, payload) => this.streamFrame(type, payload),
      onStatus: (s) => {
        const status = { ...s, leader: true, shared: this.role === 'leader' };
        this.post({ t: 'status', status: { ...status, error: undefined } });
        this.setStatus(status);
      },
      onError: (err) => this.emitError(err, true),
      onChannelsRefused: (list) => {
        for (const set of this.members.values()) list.forEach((c) => set.delete(c));
        this.postMembers();
      },
    });
    this.stream.start();
  }

  union() {
    const u = new Set();
    for (const set of this.members.values()) for (const c of set) u.add(c);
    return u;
  }

  /**
   * Leader (or a tab on its own): a tab's channels change, by op
   * ('subscribe', 'unsubscribe', or 'set' to replace them); the stream
   * follows the union of all tabs' channels.
   */
  async changeMember(tab, op, list) {
    const before = this.union();
    let set = this.members.get(tab);
    if (!set) this.members.set(tab, (set = tab === this.tabId ? this.myChannels : new Set()));
    const had = new Set(set);
    if (op === 'set') set.clear();
    list.forEach((c) => (op === 'unsubscribe' ? set.delete(c) : set.add(c)));
    const after = this.union();
    const add = [...after].filter((c) => !before.has(c));
    const drop = [...before].filter((c) => !after.has(c));
    this.postMembers();
    if (!this.stream) return;
    if (drop.length) this.stream.changeChannels('unsubscribe', drop).catch((err) => this.emitError(err, true));
    if (add.length === 0) return;
    try {
      await this.stream.changeChannels('subscribe', add);
    } catch (err) {
      add.forEach((c) => !had.has(c) && set.delete(c));
      this.postMembers();
      throw err;
    }
  }

  askLeader(op, channels) {
    return new Promise((resolve, reject) => {
      const id = randomId();
      const p = { msg: { t: 'req', id, tab: this.tabId, op, channels }, resolve, reject };
      p.timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new NotificationError('leader_timeout', 'the tab holding the connection did not answer'));
      }, 10000);
      this.pending.set(id, p);
      this.post(p.msg);
    });
  }

  /** Leader: forget tabs that are gone (their tab lock is no longer held). */
  async pruneMembers() {
    let held;
    try {
      held = new Set(((await navigator.locks.query()).held ?? []).map((l) => l.name));
    } catch {
      return;
    }
    const before = this.union();
    let changed = false;
    for (const tab of [...this.members.keys()]) {
      if (tab !== this.tabId && !held.has(`${this.key}:tab:${tab}`)) {
        this.members.delete(tab);
        changed = true;
      }
    }
    if (!changed) return;
    this.postMembers();
    const after = this.union();
    const gone = [...before].filter((c) => !after.has(c));
    if (gone.length && this.stream) this.stream.changeChannels('unsubscribe', gone).catch((err) => this.emitError(err, true));
  }

  post(msg) {
    if (!this.bc || (this.closed && msg.t !== 'bye')) return;
    try {
      this.bc.postMessage(msg);
    } catch {
      // closed channel
    }
  }

  postMembers() {
    if (this.role !== 'leader') return;
    const members = {};
    for (const [tab, set] of this.members) members[tab] = [...set];
    this.post({ t: 'members', members });
  }

  onMessage(m) {
    if (!m || typeof m !== 'object' || this.closed) return;
    const leader = this.role === 'leader';
    switch (m.t) {
      case 'hello':
        if (leader) {
          this.changeMember(m.tab, 'set', normalizeChannels(m.channels)).catch((err) => this.emitError(err, true));
          this.post({ t: 'status', status: { ...this.currentStatus, leader: true, error: undefined } });
        }
        break;
      case 'bye':
        if (leader && this.members.delete(m.tab)) {
          const after = this.union();
          this.postMembers();
          const gone = (m.channels ?? []).filter((c) => !after.has(c));
          if (gone.length) this.stream?.changeChannels('unsubscribe', gone).catch(() => {});
          this.pruneMembers();
        }
        break;
      case 'req':
        if (leader) {
          this.changeMember(m.tab, m.op, normalizeChannels(m.channels)).then(
            () => this.post({ t: 'res', id: m.id, tab: m.tab, ok: true }),
            (err) => this.post({ t: 'res', id: m.id, tab: m.tab, ok: false, error: { code: err.code, message: err.message, status: err.status } }),
          );
        }
        break;
      case 'res': {
        const p = m.tab === this.tabId && this.pending.get(m.id);
        if (p) {
          this.pending.delete(m.id);
          clearTimeout(p.timer);
          if (m.ok) p.resolve();
          else p.reject(new NotificationError(m.error?.code ?? 'error', m.error?.message, { status: m.error?.status ?? 0 }));
        }
        break;
      }
      case 'members':
        // Kept by every follower, so whoever leads next knows the union.
        if (!leader) this.members = new Map(Object.entries(m.members).map(([tab, list]) => [tab, tab === this.tabId ? this.myChannels : new Set(list)]));
        break;
      case 'leader':
        if (!leader) {
          // A new leader: tell it our channels, and re-ask what the old one
          // may have taken with it.
          this.post({ t: 'hello', tab: this.tabId, channels: this.channels });
          for (const p of this.pending.values()) this.post(p.msg);
        }
        break;
      case 'status':
        if (!leader) this.setStatus({ ...m.status, leader: false, shared: true });
        break;
      case 'frame':
        if (!leader) this.deliver(m.type, m.payload);
        break;
      case 'error':
        if (!leader) this.emitError(new NotificationError(m.error.code, m.error.message, { status: m.error.status, fatal: m.error.fatal }), false);
        break;
      default:
    }
  }

  // --- delivery -------------------------------------------------------------

  /** A frame from this tab's own stream (leader or standalone). */
  streamFrame(type, payload) {
    if (type === 'notification') {
      if (!this.tracker.accept(payload.cursor, payload.id)) return;
      this.persistCursor();
      this.post({ t: 'frame', type, payload });
      this.deliverNotification(payload);
      return;
    }
    if (type === 'ready') {
      this.tracker.ready(payload.cursor);
      this.persistCursor();
    }
    this.post({ t: 'frame', type, payload });
    this.deliverControl(type, payload);
  }

  /** A frame relayed by the leader. */
  deliver(type, payload) {
    if (type === 'notification') {
      if (this.tracker.accept(payload.cursor, payload.id)) this.deliverNotification(payload);
      return;
    }
    if (type === 'ready') this.tracker.ready(payload.cursor);
    this.deliverControl(type, payload);
  }

  deliverNotification(n) {
    // Addressed to the user: stored in the inbox, so one more unread,
    // unless the last inbox listing counted it already: a replay after a
    // reconnect or a reload brings notifications older than the listing.
    if (n.user_id != null && !this.inboxIds.has(n.id)) {
      this.inboxIds.add(n.id);
      const ts = Date.parse(n.timestamp);
      this.recent.push({ id: n.id, ts, seq: ++this.delivered });
      if (this.recent.length > 200) this.recent.shift();
      const counted = this.countedUpTo != null && !(ts > this.countedUpTo);
      if (this.unread != null && !counted) this.setUnread(this.unread + 1);
    }
    // The leader's connection holds every tab's channels: give this tab
    // what a connection with its own channels would have received.
    const chans = Array.isArray(n.channels) ? n.channels : [];
    if (chans.length > 0 && !chans.some((c) => this.myChannels.has(c))) return;
    this.events.emit('notification', n);
  }

  deliverControl(type, payload) {
    switch (type) {
      case 'ready':
        return;
      case 'read':
      case 'read_all':
      case 'deleted':
        if (typeof payload.unread === 'number') this.setUnread(payload.unread);
        this.events.emit(type, payload);
        return;
      case 'reset':
        // The server could not resume us: what we missed is in the inbox.
        this.listInbox({ limit: 50 }).then(
          (page) => this.events.emit('reset', { ...payload, inbox: page }),
          (err) => {
            this.emitError(err, false);
            this.events.emit('reset', { ...payload, inbox: null });
          },
        );
        return;
      default:
        this.events.emit(type, payload);
    }
  }

  persistCursor() {
    const v = this.tracker.value;
    if (v) safeStorage(() => this.storage?.setItem(this.cursorKey, v));
  }

  setStatus(s) {
    if (this.closed && (s.state !== 'closed' || this.currentStatus.state === 'closed')) return;
    this.currentStatus = { leader: this.isLeader, shared: this.role === 'leader' || this.role === 'follower', ...s };
    this.events.emit('status', this.currentStatus);
    // The count could not be had before (the service was down): now.
    if (s.state === 'open' && this.unread == null) this.refreshUnread().catch(() => {});
  }

  setUnread(n) {
    if (n === this.unread) return;
    this.unread = n;
    this.events.emit('unread', n);
  }

  emitError(err, relay) {
    if (relay) this.post({ t: 'error', error: { code: err.code, message: err.message, status: err.status, fatal: err.fatal } });
    this.events.emit('error', err);
  }

  // --- REST -----------------------------------------------------------------

  async userPath() {
    if (!this.credentials.userId) await this.credentials.current();
    const u = this.credentials.userId;
    if (!u) throw new NotificationError('user_unknown', 'the user id is unknown: give userId, or a token with a sub');
    return encodeURIComponent(u);
  }

  /** Fetches the unread count (once at a time). */
  refreshUnread() {
    this.unreadRefresh ??= this.listInbox({ limit: 20 }).finally(() => (this.unreadRefresh = null));
    return this.unreadRefresh;
  }

  async listInbox({ limit, cursor, unread } = {}) {
    const q = new URLSearchParams();
    if (limit != null) q.set('limit', String(limit));
    if (cursor != null) q.set('cursor', String(cursor));
    if (unread) q.set('unread', 'true');
    const qs = q.toString();
    const mark = this.delivered;
    const page = await this.request('GET', `/api/v1/notifications/user/${await this.userPath()}${qs ? `?${qs}` : ''}`);
    const entries = page.notifications ?? [];
    for (const n of entries) this.inboxIds.add(n.id);
    if (cursor == null) {
      // A first page is newest first: everything up to its newest entry
      // is in this count.
      const newest = entries.length ? Date.parse(entries[0].timestamp) : null;
      if (newest != null && !(newest <= this.countedUpTo)) this.countedUpTo = newest;
      // Delivered while the listing was on its way and newer than all it
      // shows: stored after the server counted.
      const listed = new Set(entries.map((n) => n.id));
      const missed = this.recent.filter((r) => r.seq > mark && !listed.has(r.id) && !(newest != null && r.ts <= newest)).length;
      if (typeof page.unread === 'number') this.setUnread(page.unread + missed);
    }
    return page;
  }

  /**
   * One REST call with the user's credentials: the token as a Bearer (a
   * token that expired meanwhile is refreshed once), or in open mode
   * nothing but, where asked, ?user_id= naming the caller.
   */
  async request(method, path, body, { asUser = false } = {}) {
    const u = new URL(this.url + path);
    if (asUser && !this.credentials.tokenMode) u.searchParams.set('user_id', this.credentials.userId);
    for (let tries = 0; ; tries++) {
      const headers = {};
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const token = await this.credentials.current();
      if (token) headers.Authorization = `Bearer ${token}`;
      let res;
      try {
        res = await this.fetch(u, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          credentials: this.options.credentials,
          cache: 'no-store',
        });
      } catch (err) {
        throw new NotificationError('network_error', String(err?.message ?? err));
      }
      if (res.ok) return res.status === 204 ? undefined : res.json();
      const err = await errorOf(res);
      if (err.code === 'token_expired' && this.credentials.getToken && tries === 0) {
        await this.credentials.refresh();
        continue;
      }
      throw err;
    }
  }
}
