// The federation's pure parts: URLs, the director's headers, scope paths, --cache.
import { describe, expect, it } from 'vitest';
import { cachePreference, federatedObject, scopePathToAsk, scopedPath, type Namespace } from '../../src/federation/index.js';
import { keyValues, parseIssuers, parseLinks, parseNamespace, parseTokenGeneration } from '../../src/federation/headers.js';
import { hostKey, parseLocation } from '../../src/transfer/index.js';
import { cacheList } from '../../cli/lib/transfer-command.js';

const remote = (text: string) => {
  const loc = parseLocation(text);
  if (loc.kind !== 'remote') throw new Error('not remote');
  return loc.url;
};

describe('federation URLs', () => {
  it('pelican://host/path keeps its host; osdf:// and stash:// name the OSDF, with osdf://a/b read as osdf:///a/b', () => {
    expect(remote('pelican://fed.example.org:8443/ns/a%20b/f').href).toBe('pelican://fed.example.org:8443/ns/a%20b/f');
    expect(remote('osdf:///ospool/f').href).toBe('osdf:///ospool/f');
    expect(remote('stash:///ospool/f').href).toBe('osdf:///ospool/f');
    expect(remote('osdf://ospool/f').href).toBe('osdf:///ospool/f');
    expect(() => parseLocation('pelican:///x')).toThrow(/names no federation/);
    expect(() => parseLocation('pelican://fed.example.org/')).toThrow(/names no path/);
    expect(hostKey(remote('pelican://fed.example.org/ns/f'))).toBe('pelican://fed.example.org');
  });

  it('discovery goes to the host, to a configured name, or for osdf to config.json else osg-htc.org', () => {
    expect(federatedObject(remote('pelican://fed.example.org/ns/f'), {}).discovery.href).toBe('https://fed.example.org/');
    expect(federatedObject(remote('pelican://mine/ns/f'), { mine: { discovery: 'https://d.example.org:8444' } }).discovery.href).toBe('https://d.example.org:8444/');
    expect(federatedObject(remote('osdf:///ns/f'), {}).discovery.href).toBe('https://osg-htc.org/');
    expect(federatedObject(remote('osdf:///ns/f'), { osdf: { discovery: 'https://localhost:9999' } }).discovery.href).toBe('https://localhost:9999/');
    expect(federatedObject(remote('pelican://fed.example.org/ns/f?directread'), {}).directRead).toBe(true);
  });
});

describe("the director's headers", () => {
  it('reads Link duplicates best first, and the namespace, authorization and token-generation lists', () => {
    const links = parseLinks('<https://c2:8443/ns/f>; rel="duplicate"; pri=2; depth=1, <https://c1:8443/ns/f>; rel="duplicate"; pri=1; depth=1, <https://x/y>; rel="other"; pri=0');
    expect(links.map((l) => [l.url.host, l.pri, l.depth])).toEqual([['c1:8443', 1, 1], ['c2:8443', 2, 1]]);
    expect(parseNamespace('namespace=/ns/, require-token=true, collections-url=https://origin:8443')).toEqual({ prefix: '/ns', requireToken: true, collectionsUrl: new URL('https://origin:8443') });
    expect(parseNamespace('require-token=true')).toBeUndefined();
    expect(parseIssuers(['issuer=https://a.example.org', 'issuer=https://b.example.org, issuer=not a url'])).toEqual(['https://a.example.org', 'https://b.example.org']);
    expect(parseTokenGeneration('issuer=https://a.example.org, max-scope-depth=3, strategy=OAuth2, base-path=/base')).toEqual({ issuer: 'https://a.example.org', maxScopeDepth: 3, basePath: '/base', strategy: 'OAuth2' });
    expect(keyValues('a=1=2, b="x"')).toEqual([['a', '1=2'], ['b', 'x']]);
  });
});

describe('scopes from the namespace', () => {
  const ns = (gen: Partial<NonNullable<Namespace['tokenGeneration']>> = {}): Namespace => ({
    federation: 'pelican://fed', prefix: '/ns', requireToken: true, issuers: ['https://i'], tokenGeneration: { issuer: 'https://i', ...gen },
  });
  it('relative to base-path (else the prefix), reduced to the directory, cut to max-scope-depth', () => {
    expect(scopePathToAsk('/ns/a/b/c/f.root', ns())).toBe('/a/b/c');
    expect(scopePathToAsk('/ns/a/b/c/f.root', ns({ maxScopeDepth: 2 }))).toBe('/a/b');
    expect(scopePathToAsk('/ns/a/b/c/', ns({ maxScopeDepth: 5 }))).toBe('/a/b/c');
    expect(scopePathToAsk('/ns/a/b/f', ns({ basePath: '/' }))).toBe('/ns/a/b');
    expect(scopePathToAsk('/ns/f', ns())).toBe('/');
    expect(scopedPath('/ns/a%20b/f', ns())).toBe('/a b/f');
  });
});

describe('--cache', () => {
  it('keeps the order; a trailing + adds the director\'s caches after them', () => {
    expect(cacheList(['https://c1:8443', 'https://c2:8443+'])).toEqual(['https://c1:8443', 'https://c2:8443', '+']);
    expect(() => cacheList(['https://c1+', 'https://c2'])).toThrow(/only the last/);
    expect(() => cacheList(['ftp://c1'])).toThrow(/not an https/);
    const pref = cachePreference(['https://c1:8443', '+']);
    expect(pref?.andDirector).toBe(true);
    expect(pref?.caches.map((u) => u.origin)).toEqual(['https://c1:8443']);
  });
});
