import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/jobs/backoff.js';

const policy = { baseDelayMs: 1_000, maxDelayMs: 60_000 };
const at = (r: number) => () => r;

describe('backoffDelay', () => {
  it('doubles the full delay with each attempt', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(policy, n, at(1)))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000]);
  });

  it('doubles the fixed half with each attempt', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(policy, n, at(0)))).toEqual([500, 1_000, 2_000, 4_000]);
  });

  it('never exceeds maxDelayMs, however many attempts', () => {
    for (const n of [7, 8, 20, 100, 1_000]) expect(backoffDelay(policy, n, at(1)), `attempt ${n}`).toBe(60_000);
  });

  it('keeps half of maxDelayMs fixed once capped', () => {
    expect(backoffDelay(policy, 50, at(0))).toBe(30_000);
  });

  it('stays within [exp/2, exp] for random values across [0, 1]', () => {
    for (let n = 1; n <= 10; n++) {
      const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 1));
      for (const r of [0, 0.1, 0.5, 0.999, 1]) {
        const d = backoffDelay(policy, n, at(r));
        expect(d, `attempt ${n}, random ${r}`).toBeGreaterThanOrEqual(exp / 2);
        expect(d, `attempt ${n}, random ${r}`).toBeLessThanOrEqual(exp);
      }
    }
  });

  it('places a random 0.5 at three quarters of the full delay', () => {
    expect(backoffDelay(policy, 3, at(0.5))).toBe(3_000);
  });

  it('treats attempt 0 like attempt 1', () => {
    expect(backoffDelay(policy, 0, at(1))).toBe(backoffDelay(policy, 1, at(1)));
  });

  it('returns whole milliseconds', () => {
    expect(Number.isInteger(backoffDelay({ baseDelayMs: 3, maxDelayMs: 100 }, 1, at(0.3)))).toBe(true);
  });

  it('uses Math.random by default and stays in range', () => {
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(policy, 4);
      expect(d).toBeGreaterThanOrEqual(4_000);
      expect(d).toBeLessThanOrEqual(8_000);
    }
  });
});
