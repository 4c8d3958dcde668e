// The dashboard (GET /dashboard): reads the service's dashboard API on its
// own origin and draws it. The stats are polled every second and the
// analytics every two; the audit trail is streamed into the page (GET
// /api/v1/dashboard/audit/stream, read with fetch, since an EventSource
// cannot send the key, and parsed with the browser client's SSEParser from
// /client.js): one request held open, restarted when the filter changes,
// resumed with after=<the last event shown> after an error or an end, with
// the client's Backoff. No build step; nothing but /client.js is imported.
// The API key, when the server has one, is asked for once, kept in
// sessionStorage (this tab only) and sent as Authorization: Bearer, never
// in a URL.
//
// One file of about 580 lines, in sections (the key and the API,
// formatting, stats, the audit trail, analytics, the loop) sharing the
// page's few helpers ($, h, api, the key): splitting it would add modules
// to serve, embed and allow in the page's Content-Security-Policy for one
// page that no other imports.

import { SSEParser, Backoff, compareSeq } from '/client.js';

const KEY_STORAGE = 'notification-service.dashboard-key';
const STATS_EVERY = 1000; // ms between stats polls
const ANALYTICS_EVERY = 2000;
const HIDDEN_EVERY = 5000; // a tab in the background polls less
const AUDIT_SHOWN = 100; // events kept on screen, and the backlog a stream starts with

const $ = (sel) => document.querySelector(sel);

/** Builds an element; children are nodes or text (never parsed as HTML). */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null) el.append(c);
  return el;
}

const svg = (tag, attrs = {}) => {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
};

// --- the key and the API -----------------------------------------------------

let apiKey = sessionStorage.getItem(KEY_STORAGE) ?? '';

/** Thrown when the server wants a (right) key: the login form shows. */
class KeyNeeded extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

/** The body of a JSON answer, or null (empty, or not JSON). */
async function jsonBody(res) {
  try {
    return await res.json();
  } catch {
    return null;
  }
}

/** What a refused answer means: KeyNeeded for 401 and 403, else an Error with the API's status, code and field. */
function failureOf(res, body) {
  if (res.status === 401 || res.status === 403) return new KeyNeeded(body?.error?.code ?? `http_${res.status}`);
  const err = new Error(body?.error?.message ?? `HTTP ${res.status}`);
  err.status = res.status;
  err.code = body?.error?.code;
  err.field = body?.error?.field;
  return err;
}

async function api(method, path) {
  const headers = { Accept: 'application/json' };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const res = await fetch(path, { method, headers, cache: 'no-store', credentials: 'omit' });
  const body = await jsonBody(res);
  if (!res.ok) throw failureOf(res, body);
  return body;
}

function showLogin(code) {
  stopAudit();
  const why = {
    api_key_missing: 'This server needs its API key (API_KEY) to show its dashboard.',
    api_key_invalid: 'This server needs its API key (API_KEY) to show its dashboard.',
    forbidden: 'That is a user\u2019s token, not the API key.',
  };
  document.body.dataset.state = 'locked';
  $('#board').hidden = true;
  $('#forget-key').hidden = true;
  $('#login').hidden = false;
  $('#login-why').textContent = why[code] ?? why.api_key_missing;
  $('#login-error').textContent =
    code === 'api_key_invalid' ? 'Wrong key: the server did not accept it.' : code === 'forbidden' ? 'Not the API key.' : '';
  if (code === 'api_key_invalid' || code === 'forbidden') {
    sessionStorage.removeItem(KEY_STORAGE);
    apiKey = '';
  }
  $('#key').focus();
}

function showBoard() {
  $('#login').hidden = true;
  $('#board').hidden = false;
  $('#forget-key').hidden = !apiKey;
  document.body.dataset.state = 'live';
}

$('#login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  apiKey = $('#key').value.trim();
  $('#key').value = '';
  sessionStorage.setItem(KEY_STORAGE, apiKey);
  $('#login-error').textContent = '';
  document.body.dataset.state = 'checking';
  poll.now();
});

$('#forget-key').addEventListener('click', () => {
  sessionStorage.removeItem(KEY_STORAGE);
  apiKey = '';
  showLogin('api_key_missing');
});

// --- formatting --------------------------------------------------------------

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const num = (n) => nf.format(n ?? 0);
function ms(seconds) {
  if (!seconds) return '–';
  if (seconds < 0.001) return `${Math.round(seconds * 1e6)} µs`;
  if (seconds < 1) return `${nf.format(seconds * 1000)} ms`;
  return `${nf.format(seconds)} s`;
}
function duration(seconds) {
  if (seconds == null) return '–';
  if (seconds < 60) return `${nf.format(seconds)} s`;
  if (seconds < 3600) return `${nf.format(seconds / 60)} min`;
  if (seconds < 86400) return `${nf.format(seconds / 3600)} h`;
  return `${nf.format(seconds / 86400)} d`;
}
function since(iso) {
  return duration(Math.max(0, (Date.now() - Date.parse(iso)) / 1000));
}
const clock = (iso) => new Date(iso).toLocaleTimeString(undefined, { hour12: false });
const utcDay = (d) => d.toISOString().slice(0, 10);
const last = (xs) => (xs && xs.length ? xs[xs.length - 1] : 0);
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

/** Sums per-instance series, aligned on their newest point. */
function sumSeries(list) {
  const n = Math.max(0, ...list.map((s) => s.length));
  const out = new Array(n).fill(0);
  for (const s of list) s.forEach((v, i) => (out[n - s.length + i] += v));
  return out;
}

// --- stats -------------------------------------------------------------------

const TRANSPORTS = ['sse', 'ws', 'pusher'];

function renderStats(s) {
  $('#mode').textContent = s.mode === 'redis' ? 'Redis mode' : 'Memory mode';
  $('#mode').className = 'pill muted';
  const redis = $('#redis');
  redis.hidden = !s.redis;
  if (s.redis) {
    redis.className = `pill ${s.redis.up ? '' : 'bad'}`;
    redis.textContent = s.redis.up
      ? `Redis ${s.redis.version ?? ''} · ${nf.format(s.redis.ping_ms)} ms · ${num((s.redis.used_memory ?? 0) / 1048576)} MiB`
      : 'Redis unreachable';
    redis.title = s.redis.up ? `${s.redis.connected_clients} clients, up ${duration(s.redis.uptime_seconds)}` : s.redis.error ?? '';
  }
  $('#updated').textContent = `updated ${clock(s.at)}`;
  const banner = $('#banner');
  banner.hidden = !(s.errors && s.errors.length);
  banner.textContent = s.errors?.length ? `Could not read: ${s.errors.join(', ')} (shown as last known).` : '';

  const inst = s.instances;
  const conns = Object.fromEntries(TRANSPORTS.map((t) => [t, sum(inst.map((i) => i.connections?.[t] ?? 0))]));
  $('#conn-total').textContent = num(sum(Object.values(conns)));
  for (const t of TRANSPORTS) $(`#conn-${t}`).textContent = num(conns[t]);
  const accepted = sumSeries(inst.map((i) => i.per_second.accepted));
  const deliveries = sumSeries(inst.map((i) => i.per_second.deliveries));
  $('#accepted-rate').textContent = num(last(accepted));
  $('#delivery-rate').textContent = num(last(deliveries));
  $('#accepted-minute').textContent = num(sum(inst.map((i) => i.last_minute.accepted)));
  $('#delivery-minute').textContent = num(sum(inst.map((i) => i.last_minute.deliveries)));
  const withLatency = inst.filter((i) => i.latency.count > 0);
  $('#p50').textContent = withLatency.length ? ms(Math.max(...withLatency.map((i) => i.latency.p50))) : '–';
  $('#p99').textContent = withLatency.length ? ms(Math.max(...withLatency.map((i) => i.latency.p99))) : '–';
  $('#slow').textContent = num(sum(inst.map((i) => i.totals.slow_consumers)));
  $('#drops').textContent = num(sum(inst.map((i) => i.totals.dropped_frames)));
  $('#pending').textContent = num(s.schedules.pending);
  $('#next-due').textContent = s.schedules.next.length ? new Date(s.schedules.next[0].scheduled_at).toLocaleString() : '–';

  drawChart(accepted, deliveries);
  renderInstances(inst);
  renderSchedules(s.schedules.next);
  renderActionCounts(inst);
}

function drawChart(accepted, deliveries) {
  const chart = $('#chart');
  // Drawn at the element's own width, so text is never stretched.
  const W = Math.max(300, Math.round(chart.clientWidth || 720)), H = 180, L = 44, B = 18, T = 8;
  chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const top = niceMax(Math.max(1, ...accepted, ...deliveries));
  const points = Math.max(60, accepted.length, deliveries.length); // a minute of heartbeats
  const x = (i, n) => L + ((W - L - 4) * (points - n + i)) / (points - 1);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const nodes = [];
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    nodes.push(svg('line', { class: 'grid', x1: L, x2: W, y1: y(v), y2: y(v) }));
    const label = svg('text', { class: 'axis', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' });
    label.textContent = num(v);
    nodes.push(label);
  }
  for (const [text, at] of [['−60 s', L], ['now', W - 4]]) {
    const label = svg('text', { class: 'axis', x: at, y: H - 3, 'text-anchor': at === L ? 'start' : 'end' });
    label.textContent = text;
    nodes.push(label);
  }
  const line = (series) => series.map((v, i) => `${x(i, series.length).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  if (deliveries.length > 1) {
    const base = `${x(deliveries.length - 1, deliveries.length).toFixed(1)},${y(0)} ${x(0, deliveries.length).toFixed(1)},${y(0)}`;
    nodes.push(svg('polygon', { class: 'area', points: `${line(deliveries)} ${base}` }));
    nodes.push(svg('polyline', { class: 'deliveries', points: line(deliveries) }));
  }
  if (accepted.length > 1) nodes.push(svg('polyline', { class: 'accepted', points: line(accepted) }));
  chart.replaceChildren(...nodes);
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function renderInstances(inst) {
  $('#instance-count').textContent = inst.length;
  const rows = inst.map((i) =>
    h('tr', { class: i.self ? 'self' : '', dataset: { id: i.id } },
      h('td', { class: 'mono', title: `${i.host} pid ${i.pid}` }, i.id),
      h('td', { class: 'muted' }, i.version),
      h('td', {}, since(i.started)),
      ...TRANSPORTS.map((t) => h('td', { class: 'n' }, num(i.connections?.[t] ?? 0))),
      h('td', { class: 'n' }, num(last(i.per_second.accepted))),
      h('td', { class: 'n' }, num(last(i.per_second.deliveries))),
      h('td', { class: 'n' }, i.latency.count ? ms(i.latency.p50) : '–'),
      h('td', { class: 'n' }, i.latency.count ? ms(i.latency.p99) : '–'),
      h('td', { class: 'n' }, num(i.totals.slow_consumers)),
    ),
  );
  $('#instances tbody').replaceChildren(...rows);
}

function renderSchedules(next) {
  $('#schedules-empty').hidden = next.length > 0;
  const items = next.map((it) => {
    const to = it.user_id ?? (it.user_ids?.length ? `${it.user_ids.length} users` : (it.channels ?? []).join(', '));
    return h('li', { dataset: { id: it.id } },
      h('div', {},
        h('div', { class: 'title' }, it.title || it.message || it.type),
        h('div', { class: 'meta' }, `${new Date(it.scheduled_at).toLocaleString()} · ${it.type} · to ${to}`)),
      h('button', { type: 'button', class: 'danger cancel', onclick: () => cancelSchedule(it.id) }, 'Cancel'));
  });
  $('#schedules').replaceChildren(...items);
}

async function cancelSchedule(id) {
  const note = $('#schedule-note');
  try {
    await api('DELETE', `/api/v1/schedules/${encodeURIComponent(id)}`);
    note.textContent = 'Cancelled.';
    note.className = 'note pad';
    $(`#schedules li[data-id="${CSS.escape(id)}"]`)?.remove();
  } catch (err) {
    if (err instanceof KeyNeeded) return showLogin(err.code);
    note.className = 'note pad bad';
    note.textContent = err.status === 404 ? 'It has fired or was cancelled already.' : `Not cancelled: ${err.message}`;
  }
  poll.now();
}

// --- the audit trail ----------------------------------------------------------

// The stream's state. gen counts the streams started: a stream (and its
// retries) whose gen is no longer current stops, so a filter change or a
// lock never leaves two running. last is the newest event id shown, the
// resume point (after=) of a reconnect.
const audit = {
  gen: 0,
  running: false,
  controller: null,
  last: '',
  filterKey: '',
  backoff: new Backoff({ base: 1000, cap: 15000 }),
  actions: new Set(),
};

function auditFilter() {
  return {
    action: $('#f-action').value,
    user_id: $('#f-user').value.trim(),
    type: $('#f-type').value.trim(),
    channel: $('#f-channel').value.trim(),
  };
}

function renderActionCounts(inst) {
  const counts = {};
  for (const i of inst) {
    for (const [action, c] of Object.entries(i.actions ?? {})) {
      counts[action] ??= { s: 0, m: 0 };
      counts[action].s += c.last_second;
      counts[action].m += c.last_minute;
    }
  }
  const names = Object.keys(counts).sort();
  $('#action-counts').replaceChildren(
    ...names.map((a) => h('span', { class: 'chip', dataset: { action: a } }, `${a} `, h('b', {}, num(counts[a].s)), '/s · ', h('b', {}, num(counts[a].m)), '/min')),
  );
  // New actions join the filter's choices.
  for (const a of names) {
    if (audit.actions.has(a)) continue;
    audit.actions.add(a);
    $('#f-action').append(h('option', { value: a }, a));
  }
}

/** Says whether event id a ("<ms>-<seq>") comes after b; any id after "". */
function idAfter(a, b) {
  if (!b) return true;
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  const c = compareSeq(am, bm);
  return c > 0 || (c === 0 && compareSeq(as, bs) > 0);
}

/** Opens the stream unless one runs: the board has just shown. */
function ensureAudit() {
  if (!audit.running) restartAudit(true);
}

/**
 * Starts the stream afresh (a new filter: the list is cleared) when the
 * filter changed, or when force is set.
 */
function restartAudit(force = false) {
  const key = JSON.stringify(auditFilter());
  if (!force && audit.running && key === audit.filterKey) return;
  stopAudit();
  audit.filterKey = key;
  audit.last = '';
  audit.backoff.reset();
  $('#audit').replaceChildren();
  $('#audit-empty').hidden = false;
  audit.running = true;
  auditLoop(audit.gen);
}

function stopAudit() {
  audit.gen++;
  audit.running = false;
  audit.controller?.abort();
  audit.controller = null;
}

// auditLoop holds one stream open, and opens it again (after the Backoff's
// wait, from the last event shown) whenever it fails or ends, until a newer
// stream or a lock replaces it.
async function auditLoop(gen) {
  while (gen === audit.gen) {
    const ac = new AbortController();
    audit.controller = ac;
    let failure = null;
    try {
      await auditOnce(ac.signal, gen);
    } catch (err) {
      failure = err;
    } finally {
      ac.abort();
    }
    if (gen !== audit.gen) return; // replaced: its abort is no failure
    if (failure instanceof KeyNeeded) {
      showLogin(failure.code);
      return;
    }
    const note = $('#audit-note');
    if (failure?.field) {
      // A filter the server refuses: no retry until it changes.
      note.textContent = failure.message;
      return;
    }
    if (failure) note.textContent = `Audit trail unavailable: ${failure.message}; reconnecting.`;
    await new Promise((resolve) => setTimeout(resolve, audit.backoff.next()));
  }
}

/** One stream, read until it ends; throws what went wrong. */
async function auditOnce(signal, gen) {
  const q = new URLSearchParams({ limit: String(AUDIT_SHOWN) });
  for (const [k, v] of Object.entries(JSON.parse(audit.filterKey))) if (v) q.set(k, v);
  if (audit.last) q.set('after', audit.last);
  const headers = { Accept: 'text/event-stream' };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const res = await fetch(`/api/v1/dashboard/audit/stream?${q}`, { headers, signal, cache: 'no-store', credentials: 'omit' });
  if (!res.ok || !(res.headers.get('Content-Type') ?? '').startsWith('text/event-stream')) {
    throw failureOf(res, await jsonBody(res));
  }
  audit.backoff.reset();
  $('#audit-note').textContent = '';
  // The first chunk of a stream into an empty list is its backlog, shown
  // as it is; what comes later arrives with a highlight.
  let fresh = $('#audit').children.length > 0;
  const parser = new SSEParser((ev) => {
    if (ev.type === 'audit' && gen === audit.gen) showEvent(JSON.parse(ev.data), fresh);
  });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parser.push(decoder.decode(value, { stream: true }));
    fresh = true;
  }
  parser.end();
}

/** Puts an event on top of the list, once: ids only grow. */
function showEvent(e, fresh) {
  if (!idAfter(e.id, audit.last)) return;
  audit.last = e.id;
  const list = $('#audit');
  list.prepend(eventItem(e, fresh));
  while (list.children.length > AUDIT_SHOWN) list.lastElementChild.remove();
  $('#audit-empty').hidden = true;
}

function eventItem(e, fresh) {
  const parts = [];
  const add = (k, v) => parts.push(h('span', {}, h('i', { class: 'k' }, `${k} `), String(v)));
  if (e.user_ids?.length) add('user', e.user_ids.length > 3 ? `${e.user_ids.slice(0, 3).join(', ')} +${e.user_ids.length - 3}` : e.user_ids.join(', '));
  if (e.type) add('type', e.type);
  if (e.channels?.length) add('channels', e.channels.join(', '));
  for (const [k, v] of Object.entries(e.fields ?? {})) {
    if (k === 'remote_addr') continue;
    add(k, typeof v === 'object' ? JSON.stringify(v) : v);
  }
  add('on', e.instance);
  return h('li', { class: fresh ? 'new' : '', dataset: { action: e.action, id: e.id, instance: e.instance } },
    h('span', { class: 'time' }, clock(e.time)),
    h('span', { class: `act ${e.action}` }, e.action),
    h('span', { class: 'what' }, parts));
}

let filterTimer = 0;
$('#audit-filter').addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => restartAudit(), 300); // typing is one change
});
$('#audit-filter').addEventListener('submit', (e) => e.preventDefault());
$('#f-clear').addEventListener('click', () => {
  for (const id of ['#f-action', '#f-user', '#f-type', '#f-channel']) $(id).value = '';
  clearTimeout(filterTimer);
  restartAudit();
});

// --- analytics ----------------------------------------------------------------

{
  const today = new Date();
  $('#a-to').value = utcDay(today);
  $('#a-from').value = utcDay(new Date(today.getTime() - 6 * 86400e3));
}
let analyticsAt = 0;

async function pollAnalytics(force) {
  if (!force && Date.now() - analyticsAt < ANALYTICS_EVERY) return;
  analyticsAt = Date.now();
  const q = new URLSearchParams({ from: $('#a-from').value, to: $('#a-to').value });
  const type = $('#a-type').value.trim();
  if (type) q.set('type', type);
  const note = $('#analytics-note');
  let res;
  try {
    res = await api('GET', `/api/v1/analytics?${q}`);
  } catch (err) {
    if (err instanceof KeyNeeded) throw err;
    note.className = 'note pad bad';
    note.textContent = err.message;
    return;
  }
  note.className = 'note pad';
  note.textContent = `Kept ${res.retention_days} days. Median time to read is estimated within ${Math.round(res.median_error * 1000) / 10}%. A send to several users counts once per user; broadcasts are never read.`;
  const row = (f, date) =>
    h('tr', { dataset: { date: date ?? '', type: f.type } },
      h('td', {}, date ?? 'all days'),
      h('td', { class: 'mono' }, f.type || (date ? '' : 'all types')),
      h('td', { class: 'n sent' }, num(f.sent)),
      h('td', { class: 'n delivered' }, num(f.delivered)),
      h('td', { class: 'n read' }, num(f.read)),
      h('td', { class: 'read-rate' }, rateBar(f.read_rate)),
      h('td', { class: 'n median' }, duration(f.median_time_to_read_seconds)));
  const days = [...res.days].reverse(); // newest day first
  $('#analytics tbody').replaceChildren(
    ...(days.length ? days.map((f) => row(f, f.date)) : [h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No notifications in this range.'))]),
  );
  $('#analytics tfoot').replaceChildren(...res.types.map((f) => row(f)), ...(res.types.length > 1 ? [row(res.total)] : []));
}

function rateBar(rate) {
  if (rate == null) return '–';
  const fill = h('i');
  fill.style.width = `${Math.min(100, rate * 100)}%`;
  return h('span', { class: 'rate' }, h('span', { class: 'bar' }, fill), `${nf.format(rate * 100)}%`);
}

$('#analytics-filter').addEventListener('change', () => pollAnalytics(true).catch(onError));
$('#analytics-filter').addEventListener('submit', (e) => e.preventDefault());

// --- the loop -------------------------------------------------------------------

function onError(err) {
  if (err instanceof KeyNeeded) return showLogin(err.code);
  document.body.dataset.state = 'error';
  const banner = $('#banner');
  banner.hidden = false;
  banner.textContent = `The service does not answer (${err.message}); retrying.`;
}

// poll runs one round (stats, analytics when due), then waits a second,
// never overlapping itself; now() starts a round at once. The first round
// that shows the board opens the audit stream, which then runs by itself.
const poll = (() => {
  let timer = 0;
  let running = false;
  let again = false;
  async function round() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    clearTimeout(timer);
    try {
      const stats = await api('GET', '/api/v1/dashboard/stats');
      showBoard();
      renderStats(stats);
      ensureAudit();
      await pollAnalytics(false);
    } catch (err) {
      onError(err);
    } finally {
      running = false;
      const locked = document.body.dataset.state === 'locked';
      if (again) {
        again = false;
        round();
      } else if (!locked) {
        timer = setTimeout(round, document.hidden ? HIDDEN_EVERY : STATS_EVERY);
      }
    }
  }
  return { now: round };
})();

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && document.body.dataset.state !== 'locked') poll.now();
});
window.dashboard = { poll, audit };
poll.now();
