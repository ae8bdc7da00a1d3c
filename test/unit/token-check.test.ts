import { UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { neededScope, scopeAllows } from '../../src/auth/scopes.js';
import { checkTokenFor } from '../../src/auth/token-check.js';
import { thrown } from '../helpers/errors.js';

const now = Date.UTC(2026, 10, 23, 12);
const secs = Math.floor(now / 1000);
const jwt = (claims: Record<string, unknown>) => new UnsecuredJWT(claims).encode();
const read = (path: string) => [{ op: 'read' as const, url: new URL(`https://s.example.org:1094${path}`) }];
const write = (path: string) => [{ op: 'write' as const, url: new URL(`https://s.example.org:1094${path}`) }];

describe('scopes', () => {
  it.each([
    ['storage.read:/', 'read', '/any/file', true],
    ['storage.read:/data', 'read', '/data/run1/f.root', true],
    ['storage.read:/data', 'read', '/data', true],
    ['storage.read:/data', 'read', '/database/f', false],
    ['storage.read:/data', 'write', '/data/f', false],
    ['storage.create:/out', 'write', '/out/f', true],
    ['storage.modify:/out', 'write', '/out/f', true],
    ['read:/data write:/out', 'write', '/out/x', true],
    ['read:/data', 'read', '/data/x', true],
    ['openid offline_access', 'read', '/data/x', false],
  ] as const)('%s allows %s of %s: %s', (scope, op, path, allowed) => {
    expect(scopeAllows(scope, op, path)).toBe(allowed);
  });

  it('names the narrowest scope an operation needs', () => {
    expect(neededScope('read', '/data/f')).toBe('storage.read:/data/f');
    expect(neededScope('write', '/out/f')).toBe('storage.create:/out/f');
  });
});

describe('checking a token before queueing', () => {
  it('passes a fitting, valid token', () => {
    expect(checkTokenFor(jwt({ scope: 'storage.read:/data', exp: secs + 3600 }), read('/data/f'), now).warnings).toEqual([]);
  });

  it('refuses an expired token', () => {
    const e = thrown(() => checkTokenFor(jwt({ scope: 'storage.read:/', exp: secs - 10 }), read('/f'), now));
    expect(e.code).toBe('TOKEN_REJECTED');
    expect(e.message).toContain('expired');
  });

  it('refuses a token not valid yet', () => {
    expect(thrown(() => checkTokenFor(jwt({ scope: 'storage.read:/', nbf: secs + 3600 }), read('/f'), now)).message).toContain('not valid before');
  });

  it('refuses a token without the scope, naming the scope needed', () => {
    const e = thrown(() => checkTokenFor(jwt({ scope: 'storage.read:/other', exp: secs + 3600 }), read('/data/f.root'), now));
    expect(e.code).toBe('TOKEN_REJECTED');
    expect(e.hint).toContain('storage.read:/data/f.root');
  });

  it('refuses a read-only token for an upload', () => {
    expect(thrown(() => checkTokenFor(jwt({ scope: 'storage.read:/', exp: secs + 3600 }), write('/out/f'), now)).hint).toContain('storage.create:/out/f');
  });

  it('warns when the token expires within minutes', () => {
    expect(checkTokenFor(jwt({ scope: 'storage.read:/', exp: secs + 120 }), read('/f'), now).warnings[0]).toMatch(/expires in 120 s/);
  });

  it('lets an opaque (non-JWT) token or one without a scope claim through unchecked', () => {
    expect(checkTokenFor('opaque-token-value', read('/f'), now).warnings).toEqual([]);
    expect(checkTokenFor(jwt({ exp: secs + 3600, 'wlcg.groups': ['/cms'] }), read('/f'), now).warnings).toEqual([]);
  });
});
