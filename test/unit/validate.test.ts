import { describe, expect, it } from 'vitest';
import type { PetrelError } from '../../src/errors.js';
import { prepareTransfers } from '../../src/jobs/validate.js';

const refusal = (f: () => unknown): PetrelError => {
  try {
    f();
  } catch (e) {
    return e as PetrelError;
  }
  throw new Error('expected a refusal');
};

describe('prepareTransfers', () => {
  it('stores URLs and paths in normal form, with the host the per-host limit counts against', () => {
    const [t] = prepareTransfers('get', [{ source: 'davs://Store.example.org/a/../b/f.root', destination: '/data/./x/../f.root' }]);
    expect(t).toEqual({ source: 'https://store.example.org/b/f.root', destination: '/data/f.root', host: 'https://store.example.org:443' });
  });

  it('counts a copy against the storage that receives the COPY: the destination when pulled, the source when pushed', () => {
    const spec = [{ source: 'https://a.example.org:1094/f', destination: 'https://b.example.org:8443/f' }];
    expect(prepareTransfers('copy', spec)[0]?.host).toBe('https://b.example.org:8443');
    expect(prepareTransfers('copy', spec, 'push')[0]?.host).toBe('https://a.example.org:1094');
  });

  it('refuses a relative local path and a side of the wrong kind, naming the transfer', () => {
    expect(refusal(() => prepareTransfers('get', [{ source: 'https://a.example.org/f', destination: 'data/f' }])).message).toBe('transfer 0: the local path data/f must be absolute');
    expect(refusal(() => prepareTransfers('put', [{ source: 'https://a.example.org/f', destination: 'https://b.example.org/f' }])).message).toMatch(/^transfer 0: a put job needs a local path as source/);
  });

  it('takes 100,000 transfers in one call', () => {
    const specs = Array.from({ length: 100_000 }, (_, i) => ({ source: `https://a.example.org/q/f${i}`, destination: `/data/q/f${i}` }));
    const out = prepareTransfers('get', specs);
    expect(out).toHaveLength(100_000);
    expect(new Set(out.map((t) => t.host))).toEqual(new Set(['https://a.example.org:443']));
  });
});
