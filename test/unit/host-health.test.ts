import { describe, expect, it } from 'vitest';
import { createHostHealth } from '../../src/jobs/host-health.js';

const H = 'https://storage.example.org:1094';
const health = () => createHostHealth({ maxWindow: 8, downAfterFailures: 3, probeFirstMs: 1_000, probeMaxMs: 4_000 });

describe('host health', () => {
  it('halves the window with each unanswered attempt and marks the host down at the third in a row', () => {
    const h = health();
    expect(h.window(H, 0)).toBe(8);
    expect(h.unanswered(H, 1, 100)).toBeUndefined();
    expect(h.window(H, 100)).toBe(4);
    expect(h.unanswered(H, 2, 200)).toBeUndefined();
    expect(h.unanswered(H, 3, 300)).toBe('down');
    expect(h.isDown(H)).toBe(true);
    expect(h.downSince(H)).toBe(100);
    expect(h.downHosts()).toEqual([{ host: H, since: 100 }]);
  });

  it('an answer in between resets the count', () => {
    const h = health();
    h.unanswered(H, 1, 0);
    h.unanswered(H, 2, 0);
    h.answered(H);
    expect(h.unanswered(H, 3, 0)).toBeUndefined();
    expect(h.isDown(H)).toBe(false);
  });

  it('a down host gets one probe at a time, at doubling intervals up to the most', () => {
    const h = health();
    for (let i = 1; i <= 3; i++) h.unanswered(H, i, 0);
    expect(h.window(H, 999)).toBe(0);
    expect(h.nextProbeAt()).toBe(1_000);
    expect(h.window(H, 1_000)).toBe(1);
    h.started(H, 10);
    expect(h.window(H, 1_000), 'no second probe while one runs').toBe(0);
    expect(h.nextProbeAt()).toBeUndefined();
    // A transfer started before the host went down fails too: the probe still runs.
    h.unanswered(H, 3, 1_200);
    expect(h.window(H, 5_000)).toBe(0);
    h.unanswered(H, 10, 1_500);
    expect(h.nextProbeAt()).toBe(3_500);
    h.started(H, 11);
    h.unanswered(H, 11, 3_500);
    expect(h.nextProbeAt()).toBe(7_500);
    h.started(H, 12);
    h.unanswered(H, 12, 7_500);
    expect(h.nextProbeAt(), 'capped at probeMaxMs').toBe(11_500);
  });

  it('a probe that ends otherwise (cancelled) lets the next one go', () => {
    const h = health();
    for (let i = 1; i <= 3; i++) h.unanswered(H, i, 0);
    h.started(H, 7);
    h.ended(H, 7);
    expect(h.window(H, 1_000)).toBe(1);
  });

  it('the first answer reopens the host at one transfer, growing by one with each answer', () => {
    const h = health();
    for (let i = 1; i <= 3; i++) h.unanswered(H, i, 0);
    h.started(H, 9);
    expect(h.answered(H)).toBe('up');
    expect(h.isDown(H)).toBe(false);
    expect(h.window(H, 0)).toBe(1);
    h.answered(H);
    expect(h.window(H, 0)).toBe(2);
    for (let i = 0; i < 10; i++) h.answered(H);
    expect(h.window(H, 0)).toBe(8);
  });
});
