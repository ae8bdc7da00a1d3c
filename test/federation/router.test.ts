// The router on its own, against real HTTPS servers (the stand-in director, and a broken
// discovery host): what it asks, how often, and what it keeps.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PetrelError } from '../../src/errors.js';
import { createRouter } from '../../src/federation/index.js';
import { createHttpClient, parseLocation, type HttpClient } from '../../src/transfer/index.js';
import { standInFederation, type StandInFederation } from '../helpers/federation.js';
import { standIn } from '../helpers/stand-in.js';

const tb = inject('testbed');
const { a, b } = tb.servers;

let client: HttpClient;
let fed: StandInFederation;
beforeAll(async () => {
  client = createHttpClient({ caFile: tb.caFile });
  fed = await standInFederation(tb, [
    { prefix: '/ns', caches: [a.url, b.url], origin: b.url, requireToken: false },
    { prefix: '/ns/deeper', caches: [b.url], origin: a.url, requireToken: true, issuers: [tb.idp.url], collectionsUrl: `${a.url}/` },
  ]);
});
afterAll(async () => {
  await fed.close();
  await client.close();
});

const url = (text: string): URL => {
  const loc = parseLocation(text);
  if (loc.kind !== 'remote') throw new Error('not a URL');
  return loc.url;
};

const router = (namespaceTtlMs = 60_000, now?: () => number) =>
  createRouter({ client, federations: {}, discoveryTtlMs: 60_000, failedDiscoveryTtlMs: 60_000, namespaceTtlMs, ...(now ? { now } : {}) });

describe('the federation router', () => {
  it('asks once per namespace, keeps the longest prefix apart, and builds other objects\' URLs from the servers it learned', async () => {
    fed.queries.length = 0;
    const before = fed.discoveries;
    const r = router();
    const first = await r.route(url(`pelican://${fed.host}/ns/a/f1`), 'read');
    expect(first.servers.map((s) => s.href)).toEqual([`${a.url}/ns/a/f1`, `${b.url}/ns/a/f1`]);
    expect(first.namespace).toMatchObject({ prefix: '/ns', requireToken: false, federation: `pelican://${fed.host}` });
    const other = await r.route(url(`pelican://${fed.host}/ns/b/c/f2`), 'read');
    expect(other.servers.map((s) => s.href)).toEqual([`${a.url}/ns/b/c/f2`, `${b.url}/ns/b/c/f2`]);
    expect([first.learned, other.learned]).toEqual([false, true]);
    // A nested namespace cannot be known until asked about: the /ns answer serves it (the engine
    // asks afresh when a server refuses such a route), and `fresh` asks the director.
    const deeper = await r.route(url(`pelican://${fed.host}/ns/deeper/f3`), 'read');
    expect(deeper.namespace.prefix).toBe('/ns');
    const asked = await r.route(url(`pelican://${fed.host}/ns/deeper/f3`), 'read', { fresh: true });
    expect(asked.namespace.prefix).toBe('/ns/deeper');
    expect(asked.servers.map((s) => s.href)).toEqual([`${b.url}/ns/deeper/f3`]);
    // Origins are learned apart from caches; listings go to the collections URL.
    const listed = await r.route(url(`pelican://${fed.host}/ns/deeper/dir/`), 'list');
    expect(listed.namespace.prefix).toBe('/ns/deeper');
    expect(listed.servers.map((s) => s.href)).toEqual([`${a.url}/ns/deeper/dir/`]);
    expect(fed.queries.map((q) => `${q.method} ${q.path}`)).toEqual(['GET /ns/a/f1', 'GET /ns/deeper/f3', 'PROPFIND /ns/deeper/dir/']);
    expect(r.directorQueries()).toBe(3);
    expect(fed.discoveries - before).toBe(1);
  });

  it('--cache: the named caches alone, or with + the director\'s after them (without repeating one)', async () => {
    const r = router();
    const only = await r.route(url(`pelican://${fed.host}/ns/c/f`), 'read', { caches: { caches: [new URL(b.url)], andDirector: false } });
    expect(only.servers.map((s) => s.href)).toEqual([`${b.url}/ns/c/f`]);
    const more = await r.route(url(`pelican://${fed.host}/ns/c/f`), 'read', { caches: { caches: [new URL(b.url)], andDirector: true } });
    expect(more.servers.map((s) => s.href)).toEqual([`${b.url}/ns/c/f`, `${a.url}/ns/c/f`]);
  });

  it('concurrent first asks in one directory share one query; an answer expires with the namespace TTL', async () => {
    fed.queries.length = 0;
    let t = 1_000_000;
    const r = router(10_000, () => t);
    await Promise.all(Array.from({ length: 20 }, (_, i) => r.route(url(`pelican://${fed.host}/ns/many/f${i}`), 'read')));
    expect(fed.queries.length).toBe(1);
    t += 10_001;
    await r.route(url(`pelican://${fed.host}/ns/many/f0`), 'read');
    expect(fed.queries.length).toBe(2);
  });

  it('a federation whose discovery fails is not asked again for the failure TTL', async () => {
    let asked = 0;
    const broken = await standIn(tb, (req, res) => {
      asked++;
      req.resume();
      res.writeHead(503).end('down for maintenance');
    });
    const r = router();
    const host = new URL(broken.url).host;
    const fail = async () => r.route(url(`pelican://${host}/ns/f`), 'read').then(() => undefined, (e: unknown) => e as PetrelError);
    const e1 = await fail();
    expect(e1?.code).toBe('FEDERATION_UNAVAILABLE');
    expect(e1?.message).toContain(`the federation at ${host} cannot be discovered`);
    expect(e1?.transient).toBe(true);
    expect(asked).toBe(3);
    const e2 = await fail();
    expect(e2?.code).toBe('FEDERATION_UNAVAILABLE');
    expect(asked).toBe(3);
  });
});
