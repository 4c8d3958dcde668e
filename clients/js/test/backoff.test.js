// Backoff: exponential, full jitter, capped, reset, Retry-After wins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, parseRetryAfter } from '../client.js';

test('full jitter: each delay is in [0, min(cap, base * 2^n))', () => {
  const b = new Backoff({ base: 100, cap: 1600 });
  const ceilings = [100, 200, 400, 800, 1600, 1600, 1600];
  for (const ceiling of ceilings) {
    assert.equal(b.ceiling(), ceiling);
    const d = b.next();
    assert.ok(d >= 0 && d < ceiling, `delay ${d} outside [0, ${ceiling})`);
    assert.ok(Number.isInteger(d));
  }
});

test('full jitter spans the whole range, not just the top', () => {
  // The extremes of the random source map to the bounds.
  const low = new Backoff({ base: 1000, cap: 8000, random: () => 0 });
  const high = new Backoff({ base: 1000, cap: 8000, random: () => 0.999999 });
  for (let i = 0; i < 5; i++) {
    assert.equal(low.next(), 0);
  }
  assert.deepEqual([0, 1, 2, 3, 4].map(() => high.next()), [999, 1999, 3999, 7999, 7999]);

  // And with Math.random the draws are spread: some in the lower half.
  const b = new Backoff({ base: 10000, cap: 10000 });
  const draws = Array.from({ length: 200 }, () => b.next());
  assert.ok(draws.some((d) => d < 5000) && draws.some((d) => d >= 5000));
});

test('the ceiling is capped and never overflows', () => {
  const b = new Backoff({ base: 1, cap: 30000 });
  for (let i = 0; i < 5000; i++) b.next();
  assert.equal(b.ceiling(), 30000);
  assert.ok(b.next() < 30000);
});

test('reset starts again from base', () => {
  const b = new Backoff({ base: 100, cap: 10000, random: () => 0.5 });
  b.next();
  b.next();
  b.next();
  assert.equal(b.ceiling(), 800);
  b.reset();
  assert.equal(b.attempt, 0);
  assert.equal(b.next(), 50);
});

test('Retry-After wins over the drawn delay, shorter or longer, and still counts as an attempt', () => {
  const b = new Backoff({ base: 1000, cap: 30000, random: () => 0.5 });
  assert.equal(b.next({ retryAfter: 7000 }), 7000); // longer than the ceiling of 1000
  assert.equal(b.attempt, 1);
  b.next();
  b.next();
  b.next(); // ceiling now 16000
  assert.equal(b.next({ retryAfter: 1000 }), 1000); // shorter than a draw would be
  assert.equal(b.next({ retryAfter: 0 }), 0);
  assert.equal(b.next({ retryAfter: null }), 15000); // no Retry-After: a draw (ceiling 30000, random 0.5)
});

test('bad options are refused', () => {
  assert.throws(() => new Backoff({ base: 0 }), RangeError);
  assert.throws(() => new Backoff({ base: 1000, cap: 10 }), RangeError);
});

test('parseRetryAfter reads seconds and HTTP dates', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('3', now), 3000);
  assert.equal(parseRetryAfter(' 1 ', now), 1000);
  assert.equal(parseRetryAfter('0', now), 0);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0); // in the past: now
  assert.equal(parseRetryAfter(null, now), null);
  assert.equal(parseRetryAfter('', now), null);
  assert.equal(parseRetryAfter('soon', now), null);
  assert.equal(parseRetryAfter('-1', now), null);
});
