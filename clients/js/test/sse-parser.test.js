// The text/event-stream parser, fed the way a network delivers it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SSEParser } from '../client.js';

function parse(chunks) {
  const events = [];
  const comments = [];
  const p = new SSEParser((e) => events.push(e), (c) => comments.push(c));
  for (const c of chunks) p.push(c);
  return { events, comments, parser: p };
}

// The server's catch-up: retry, a named ready with an id, a notification.
const stream =
  'retry: 2000\nevent: ready\nid: ep-1\ndata: {"event":"ready","cursor":"ep-1"}\n\n' +
  ': heartbeat\n\n' +
  'id: ep-2\ndata: {"event":"notification","cursor":"ep-2","title":"hé ✓"}\n\n' +
  'event: read\ndata: {"event":"read","unread":0}\n\n';

const expected = [
  { type: 'ready', data: '{"event":"ready","cursor":"ep-1"}', id: 'ep-1' },
  { type: 'message', data: '{"event":"notification","cursor":"ep-2","title":"hé ✓"}', id: 'ep-2' },
  // The id persists across events, as in the spec.
  { type: 'read', data: '{"event":"read","unread":0}', id: 'ep-2' },
];

test('a whole stream at once', () => {
  const { events, comments, parser } = parse([stream]);
  assert.deepEqual(events, expected);
  assert.deepEqual(comments, ['heartbeat']);
  assert.equal(parser.retry, 2000);
});

test('every chunk boundary gives the same events', () => {
  for (let i = 0; i <= stream.length; i++) {
    const { events } = parse([stream.slice(0, i), stream.slice(i)]);
    assert.deepEqual(events, expected, `split at ${i}`);
  }
  // And one character at a time.
  assert.deepEqual(parse([...stream]).events, expected);
});

test('CRLF, CR and LF line endings, even a CRLF split across chunks', () => {
  for (const eol of ['\r\n', '\r', '\n']) {
    const s = stream.replace(/\n/g, eol);
    assert.deepEqual(parse([s]).events, expected, JSON.stringify(eol));
    for (let i = 0; i <= s.length; i++) {
      assert.deepEqual(parse([s.slice(0, i), s.slice(i)]).events, expected, `${JSON.stringify(eol)} split at ${i}`);
    }
  }
  // A CR ending a chunk and the LF opening the next make one line end, not two
  // (two would dispatch an event early).
  const { events } = parse(['data: a\r', '\ndata: b\r\n\r\n']);
  assert.deepEqual(events, [{ type: 'message', data: 'a\nb', id: '' }]);
});

test('multi-line data joins with newlines; a trailing newline is removed', () => {
  const { events } = parse(['data: one\ndata: two\ndata:\ndata:  four\n\n']);
  assert.deepEqual(events, [{ type: 'message', data: 'one\ntwo\n\n four', id: '' }]);
});

test('comments, unknown fields and fields without a colon', () => {
  const { events, comments } = parse([':\n: keep-alive\n:no space\nfoo: bar\ndata\n\n']);
  assert.deepEqual(comments, ['', 'keep-alive', 'no space']);
  // "data" with no colon is a data field with an empty value.
  assert.deepEqual(events, [{ type: 'message', data: '', id: '' }]);
});

test('an event without data is not dispatched, and its type does not leak', () => {
  const { events } = parse(['event: ping\n\ndata: x\n\n']);
  assert.deepEqual(events, [{ type: 'message', data: 'x', id: '' }]);
});

test('retry takes digits only; id with NUL is ignored', () => {
  const { parser, events } = parse(['retry: 1500\nretry: soon\nretry: 15x\nid: a\0b\ndata: x\n\n']);
  assert.equal(parser.retry, 1500);
  assert.equal(events[0].id, '');
  const { events: e2 } = parse(['id: 7\ndata: x\n\nid\ndata: y\n\n']);
  assert.deepEqual(e2.map((e) => e.id), ['7', ''], 'an empty id resets the last event id');
});

test('a leading BOM is skipped, only at the start of the stream', () => {
  const { events } = parse(['\uFEFFdata: x\n\n', '\uFEFFdata: y\n\n']);
  // A later BOM is part of the line: "\uFEFFdata" is an unknown field.
  assert.deepEqual(events.map((e) => e.data), ['x']);
});

test('an unterminated event at the end of the stream is dropped', () => {
  const { events, parser } = parse(['data: complete\n\ndata: partial\n']);
  parser.end();
  assert.deepEqual(events.map((e) => e.data), ['complete']);
});

test('one space after the colon is removed, not more', () => {
  const { events } = parse(['data:  two spaces\nevent:x\ndata:none\n\n']);
  assert.deepEqual(events, [{ type: 'x', data: ' two spaces\nnone', id: '' }]);
});
