// The size headers a download trusts: what a resumed or ranged download accepts from a server.
import { describe, expect, it } from 'vitest';
import { contentLength, contentRange } from '../../src/transfer/http.js';

describe('Content-Range', () => {
  it('reads first, last and the size; `*` is an unknown size', () => {
    expect(contentRange({ 'content-range': 'bytes 100-199/1000' })).toEqual({ first: 100, last: 199, total: 1000 });
    expect(contentRange({ 'content-range': 'bytes 0-0/*' })).toEqual({ first: 0, last: 0, total: null });
  });

  it('takes the line XRootD 5.5 ends with a bare LF', () => {
    expect(contentRange({ 'content-range': 'bytes 0-0/4096\n' })).toEqual({ first: 0, last: 0, total: 4096 });
  });

  it.each([
    ['absent', undefined],
    ['another unit', 'items 0-1/2'],
    ['a range past the end', 'bytes 0-1000/1000'],
    ['a range backwards', 'bytes 10-5/100'],
    ['an unsatisfied range', 'bytes */1000'],
  ])('refuses %s', (_what, value) => {
    expect(contentRange(value === undefined ? {} : { 'content-range': value })).toBeUndefined();
  });
});

describe('Content-Length', () => {
  it('is a byte count, or nothing', () => {
    expect(contentLength({ 'content-length': '65536' })).toBe(65536);
    expect(contentLength({ 'content-length': '0' })).toBe(0);
    for (const v of ['', '-1', '1.5', 'abc', '99999999999999999999']) expect(contentLength({ 'content-length': v }), v).toBeUndefined();
    expect(contentLength({})).toBeUndefined();
  });
});
