// Cursors and de-duplication across reconnects and tabs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CursorTracker, parseCursor, compareSeq, channelAllowed } from '../client.js';

test('parseCursor reads the server format and refuses anything else', () => {
  assert.deepEqual(parseCursor('abc123-42'), { epoch: 'abc123', seq: '42' });
  assert.deepEqual(parseCursor('e-007'), { epoch: 'e', seq: '7' });
  assert.deepEqual(parseCursor('e-0'), { epoch: 'e', seq: '0' });
  // Past 2^53 the sequence stays exact.
  assert.deepEqual(parseCursor('e-18446744073709551615'), { epoch: 'e', seq: '18446744073709551615' });
  for (const bad of ['', '-1', 'e-', 'e', 'e-1x', 'é-1', 'a-b-1', 'e-' + '1'.repeat(70), null, 5]) {
    assert.equal(parseCursor(bad), null, String(bad));
  }
});

test('compareSeq orders decimal strings of any length', () => {
  assert.equal(compareSeq('9', '10'), -1);
  assert.equal(compareSeq('10', '9'), 1);
  assert.equal(compareSeq('123', '123'), 0);
  assert.equal(compareSeq('9007199254740993', '9007199254740992'), 1); // beyond Number's precision
});

test('a replay overlapping what was delivered is dropped', () => {
  const t = new CursorTracker();
  const delivered = [];
  const feed = (seqs) => {
    for (const s of seqs) if (t.accept(`ep-${s}`, `id-${s}`)) delivered.push(s);
  };
  feed([1, 2, 3, 4]);
  // A reconnect resumes from 4, but the server (or a new leader tab with an
  // older cursor) replays from 2.
  t.ready('ep-2');
  assert.equal(t.value, 'ep-4', 'ready never moves the cursor back');
  feed([2, 3, 4, 5, 6]);
  feed([6, 7]);
  assert.deepEqual(delivered, [1, 2, 3, 4, 5, 6, 7]);
});

test('ids already delivered are dropped even without a cursor', () => {
  const t = new CursorTracker();
  assert.equal(t.accept(undefined, 'a'), true);
  assert.equal(t.accept(undefined, 'a'), false);
  assert.equal(t.accept('ep-1', 'b'), true);
  assert.equal(t.accept('ep-2', 'b'), false, 'same id, later cursor: still a duplicate');
});

test('a new epoch (the server reset) starts afresh', () => {
  const t = new CursorTracker({ cursor: 'old-900' });
  t.ready('new-5'); // the server could not resume: a new head
  assert.equal(t.value, 'new-5');
  assert.equal(t.accept('new-3', 'x'), false);
  assert.equal(t.accept('new-6', 'y'), true);
  // A notification of another epoch without a ready (a relayed event from a
  // leader already reset) is accepted and moves the cursor there.
  const u = new CursorTracker({ cursor: 'old-900' });
  assert.equal(u.accept('new-1', 'z'), true);
  assert.equal(u.value, 'new-1');
});

test('the cursor survives a reload through its initial value', () => {
  const before = new CursorTracker();
  before.accept('ep-10', 'a');
  before.accept('ep-11', 'b');
  const stored = before.value;
  const after = new CursorTracker({ cursor: stored });
  assert.equal(after.accept('ep-11', 'b'), false);
  assert.equal(after.accept('ep-12', 'c'), true);
  assert.equal(new CursorTracker({ cursor: 'garbage' }).value, null);
});

test('sequence numbers past 2^53 compare exactly', () => {
  const t = new CursorTracker({ cursor: 'ep-9007199254740993' });
  assert.equal(t.accept('ep-9007199254740992', 'a'), false);
  assert.equal(t.accept('ep-9007199254740994', 'b'), true);
});

test('the ids remembered are bounded, oldest forgotten first', () => {
  const t = new CursorTracker({ remember: 3 });
  for (const id of ['a', 'b', 'c', 'd']) t.accept(undefined, id);
  assert.equal(t.accept(undefined, 'a'), true, 'a was forgotten');
  assert.equal(t.accept(undefined, 'd'), false);
});

test('channelAllowed matches token channel patterns like the server', () => {
  assert.equal(channelAllowed(['orders.*'], 'orders.1'), true);
  assert.equal(channelAllowed(['orders.*'], 'orders.eu.1'), true);
  assert.equal(channelAllowed(['orders.*'], 'orders'), false);
  assert.equal(channelAllowed(['*'], 'anything'), true);
  assert.equal(channelAllowed(['news'], 'news'), true);
  assert.equal(channelAllowed(['news'], 'newsx'), false);
  assert.equal(channelAllowed(['a.b'], 'aXb'), false, 'a dot is literal');
  assert.equal(channelAllowed([], 'news'), false);
  assert.equal(channelAllowed(undefined, 'news'), false, 'no claim allows no channel');
});
