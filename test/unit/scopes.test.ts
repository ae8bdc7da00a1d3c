import { describe, expect, it } from 'vitest';
import { issuerFor, prefixCovers, renewalThreshold } from '../../src/auth/broker.js';
import { createJobTokenVault, storageOf } from '../../src/auth/job-tokens.js';
import { scopeKey, scopePath, scopesToWarm } from '../../src/auth/scopes.js';
import { IssuerSetting } from '../../src/config.js';

describe('prefixes and scope paths', () => {
  it('a prefix covers URLs of its origin at or below its path, on directory boundaries', () => {
    const p = 'https://xrd.example.org:1094/data';
    expect(prefixCovers(p, new URL('https://xrd.example.org:1094/data/run1/f.root'))).toBe(true);
    expect(prefixCovers(p, new URL('https://xrd.example.org:1094/data'))).toBe(true);
    expect(prefixCovers(p, new URL('https://xrd.example.org:1094/database/f'))).toBe(false);
    expect(prefixCovers(p, new URL('https://xrd.example.org:443/data/f'))).toBe(false);
    expect(prefixCovers('not a url', new URL('https://x.org/'))).toBe(false);
  });

  it('the longest configured prefix picks the issuer', () => {
    const issuers = [
      IssuerSetting.parse({ prefix: 'https://s.org/', issuer: 'https://a.org' }),
      IssuerSetting.parse({ prefix: 'https://s.org/cms', issuer: 'https://b.org' }),
    ];
    expect(issuerFor(issuers, new URL('https://s.org/cms/f'))?.issuer).toBe('https://b.org');
    expect(issuerFor(issuers, new URL('https://s.org/atlas/f'))?.issuer).toBe('https://a.org');
    expect(issuerFor(issuers, new URL('https://other.org/f'))).toBeUndefined();
  });

  it('maps storage paths to scope paths relative to the base path', () => {
    expect(scopePath('/eos/cms/store/f', '/eos/cms')).toBe('/store/f');
    expect(scopePath('/eos/cms', '/eos/cms/')).toBe('/');
    expect(scopePath('/eos/atlas/f', '/eos/cms')).toBeUndefined();
    expect(scopePath('/data/f')).toBe('/data/f');
  });

  it('asks for read always, write and stage on request; scope sets key the same in any order', () => {
    expect(scopesToWarm('/d', {})).toEqual(['storage.read:/d']);
    expect(scopesToWarm('/d', { write: true, stage: true })).toEqual(['storage.read:/d', 'storage.create:/d', 'storage.modify:/d', 'storage.stage:/d']);
    expect(scopeKey(['b', 'a', 'b'])).toBe(scopeKey(['a', 'b']));
  });
});

describe('job token vault', () => {
  it('keeps tokens plain without a wallet, in memory while it is closed, sealed while it is open', () => {
    let initialized = false;
    const vault = createJobTokenVault({ walletInitialized: () => initialized });
    expect(vault.columnFor('j1', 'TOKEN-1')).toBe('TOKEN-1');
    initialized = true;
    const held = vault.columnFor('j2', 'TOKEN-2');
    expect(storageOf(held)).toBe('memory');
    expect(vault.read('j2', held)).toBe('TOKEN-2');
    expect(() => vault.read('j3', 'sealed:v1:AAAA')).toThrow(expect.objectContaining({ code: 'WALLET_CLOSED' }));

    vault.setSealKey(Buffer.alloc(32, 7));
    const sealed = vault.columnFor('j4', 'TOKEN-4');
    expect(storageOf(sealed)).toBe('sealed');
    expect(sealed).not.toContain('TOKEN-4');
    expect(vault.read('j4', sealed)).toBe('TOKEN-4');
    const resealed = vault.resealed('j2', held) as string;
    expect(vault.read('j2', resealed)).toBe('TOKEN-2');
    // Another wallet's seal key cannot read it, and says what to do.
    vault.setSealKey(Buffer.alloc(32, 8));
    expect(() => vault.read('j4', sealed)).toThrow(expect.objectContaining({ code: 'CREDENTIAL_NEEDED' }));
  });

  it('a memory-held token lost in a restart reads as absent', () => {
    const vault = createJobTokenVault({ walletInitialized: () => true });
    expect(vault.read('gone', 'in-memory')).toBeNull();
  });
});

describe('background renewal threshold', () => {
  const MIN = 60_000;
  it('is half the lifetime, at least the minimum validity, at most the window', () => {
    const t = (lifeMin: number) => ({ scope: 's', token: 't', issuedAt: 0, expiresAt: lifeMin * MIN });
    expect(renewalThreshold(t(20), 30 * MIN, 5 * MIN)).toBe(10 * MIN);
    expect(renewalThreshold(t(6), 30 * MIN, 5 * MIN)).toBe(5 * MIN);
    expect(renewalThreshold(t(360), 30 * MIN, 5 * MIN)).toBe(30 * MIN);
    // A token of unknown age: the window decides.
    expect(renewalThreshold({ scope: 's', token: 't', expiresAt: 20 * MIN }, 30 * MIN, 5 * MIN)).toBe(30 * MIN);
  });
});
