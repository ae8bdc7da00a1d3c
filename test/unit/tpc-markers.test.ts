import { describe, expect, it } from 'vitest';
import { createMarkerParser, type MarkerEvent } from '../../src/transfer/tpc-markers.js';

// Exactly what XRootD 5.5.3 sends (testbed.md), and the tab-indented form of other servers.
const marker = (bytes: number, indent = '') =>
  `${indent}Perf Marker\n${indent}Timestamp: 1795416195\n${indent}Stripe Index: 0\n${indent}Stripe Bytes Transferred: ${bytes}\n${indent}Total Stripe Count: 1\n${indent}RemoteConnections: tcp:127.0.0.1:9443\n${indent}End\n`;
const SUCCESS_BODY = marker(0) + marker(1048576) + marker(268435456) + 'success: Created';
const FAILURE_BODY = marker(0) + 'failure: Remote side failed with status code 404; error message: "Unable to open /x; no such file or directory "';

function parseInChunks(body: string, sizes: () => number): { events: MarkerEvent[]; end: MarkerEvent | undefined } {
  const bytes = Buffer.from(body);
  const p = createMarkerParser();
  const events: MarkerEvent[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = Math.max(1, sizes());
    events.push(...p.feed(bytes.subarray(i, i + n)));
    i += n;
  }
  return { events, end: p.end() };
}

describe('COPY marker parser', () => {
  it('reads progress and a final success line without a newline, fed byte by byte', () => {
    const { events, end } = parseInChunks(SUCCESS_BODY, () => 1);
    expect(events.filter((e) => e.type === 'progress').map((e) => (e as { bytes: number }).bytes)).toEqual([0, 1048576, 268435456]);
    expect(end).toEqual({ type: 'final', ok: true, text: 'success: Created' });
  });

  it('gives the same result for random chunk sizes, many times', () => {
    for (let round = 0; round < 200; round++) {
      const { events, end } = parseInChunks(SUCCESS_BODY, () => Math.floor(Math.random() * 40));
      expect(events.filter((e) => e.type === 'progress')).toHaveLength(3);
      expect(end?.type === 'final' && end.ok).toBe(true);
    }
  });

  it('keeps the server text of a failure', () => {
    const { end } = parseInChunks(FAILURE_BODY, () => 7);
    expect(end).toMatchObject({ ok: false, text: expect.stringContaining('status code 404') });
    for (const word of ['failed: x', 'aborted: cancelled by the user']) expect(parseInChunks(word, () => 3).end).toMatchObject({ ok: false });
  });

  it('a body that ends after a marker without a final line has no outcome (the active server died)', () => {
    expect(parseInChunks(marker(5000), () => 11).end).toBeUndefined();
  });

  it('accepts tab-indented markers and sums the stripes', () => {
    const two = '\tPerf Marker\n\tStripe Index: 0\n\tStripe Bytes Transferred: 100\n\tEnd\n\tPerf Marker\n\tStripe Index: 1\n\tStripe Bytes Transferred: 50\n\tEnd\n';
    const { events } = parseInChunks(marker(10, '\t') + two + 'success: ok\n', () => 5);
    expect(events.filter((e) => e.type === 'progress').map((e) => (e as { bytes: number }).bytes)).toEqual([10, 100, 150]);
  });

  it('copes with a multi-byte character split across chunks', () => {
    const { end } = parseInChunks('failure: Datei nicht gefunden – ünknown', () => 1);
    expect(end).toMatchObject({ ok: false, text: 'failure: Datei nicht gefunden – ünknown' });
  });
});
