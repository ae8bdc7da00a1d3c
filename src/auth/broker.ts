import { stat } from 'node:fs/promises';
import type { IssuerSetting } from '../config.js';
import { PetrelError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CachedAccessToken, Credential, WalletContents, WalletKey } from '../wallet/index.js';
import { readWallet, transactWallet } from '../wallet/index.js';
import type { IssuedTokens, Oidc } from './oidc.js';
import { operationVerb, scopeGrants, scopeKey, scopePath, type Operation } from './scopes.js';

export interface TokenNeed {
  url: URL;
  operation: Operation;
}

export interface AcquiredToken {
  token: string;
  source: 'cache' | 'refresh' | 'exchange';
  expiresAt?: number;
  credentialId?: string;
}

/** The agent's (or the CLI's) hold on the wallet: a key while it is open. */
export interface WalletAccess {
  path: string;
  key(): WalletKey | undefined;
  initialized(): boolean;
}

export interface RefreshOutcome {
  refreshed: { credential: string; scope: string; expiresAt: string }[];
  failed: { credential: string; code: string; message: string }[];
}

export interface TokenBrokerOptions {
  wallet: WalletAccess;
  oidc: Oidc;
  issuers: readonly IssuerSetting[];
  minValidityMs: number;
  logger: Logger;
  now?: () => number;
}

/** A still-valid token is used while the issuer cannot be reached, if it has this much life left. */
const FALLBACK_MARGIN_MS = 30_000;

/** Whether a URL prefix covers `url` (same origin, path at a directory boundary). */
export function prefixCovers(prefix: string, url: URL): boolean {
  let p: URL;
  try {
    p = new URL(prefix);
  } catch {
    return false;
  }
  // Scheme and host, not `origin`: a pelican:// URL's origin is opaque ("null") and would match any other.
  if (p.protocol !== url.protocol || p.host !== url.host) return false;
  const base = p.pathname.replace(/\/+$/, '');
  return base === '' || url.pathname === base || url.pathname.startsWith(`${base}/`);
}

export function issuerFor(issuers: readonly IssuerSetting[], url: URL): IssuerSetting | undefined {
  return issuers.filter((s) => prefixCovers(s.prefix, url)).sort((a, b) => b.prefix.length - a.prefix.length)[0];
}

/** A URL without its query, as messages name it (`origin` is "null" for pelican://). */
const where = (url: URL): string => `${url.protocol}//${url.host}${url.pathname}`;

const warmHint = (url: URL, operation: Operation = 'read') =>
  `log in for it with \`petrel warm ${where(url)}${operation === 'read' ? '' : ` --${operation}`}\``;

export function waitingError(code: 'CREDENTIAL_NEEDED' | 'CREDENTIAL_DEAD' | 'WALLET_CLOSED', message: string, hint: string): PetrelError {
  return new PetrelError(code, message, { hint });
}


interface Choice {
  credential: Credential;
  /** The credential's scopes that grant the operation at this path: what the token is asked for. */
  scopes: string[];
}

function choose(contents: WalletContents, need: TokenNeed): { choice?: Choice; dead?: Credential } {
  let path = need.url.pathname;
  try {
    path = decodeURIComponent(path);
  } catch {
    // a stray % stays as written
  }
  const candidates = Object.values(contents.credentials)
    .filter((c) => c.prefixes.some((p) => prefixCovers(p, need.url)))
    .map((c) => {
      const sp = scopePath(path, c.basePath);
      return { credential: c, scopes: sp === undefined ? [] : c.scopes.filter((s) => scopeGrants(s, need.operation, sp)) };
    })
    .filter((c) => c.scopes.length > 0)
    .sort((a, b) => Number(a.credential.dead) - Number(b.credential.dead) || longestPrefix(b.credential, need.url) - longestPrefix(a.credential, need.url));
  const best = candidates[0];
  if (!best) return {};
  return best.credential.dead ? { dead: best.credential } : { choice: best };
}

function longestPrefix(c: Credential, url: URL): number {
  return Math.max(...c.prefixes.filter((p) => prefixCovers(p, url)).map((p) => p.length));
}

/**
 * How much life a cached token may have left before background refresh renews it: half its
 * lifetime (a 20-min token at 10 min), never less than the minimum validity transfers need, and
 * only within the window. Renewing everything inside a window longer than the tokens live would
 * call the issuer on every run.
 */
export function renewalThreshold(t: CachedAccessToken, windowMs: number, minValidityMs: number): number {
  const lifetime = t.issuedAt === undefined ? Infinity : t.expiresAt - t.issuedAt;
  return Math.min(windowMs, Math.max(lifetime / 2, minValidityMs));
}

/** A cached token whose scopes include all of `scopes`, with at least `minMs` of life left. */
function cachedToken(c: Credential, scopes: string[], now: number, minMs: number) {
  return c.accessTokens.find((t) => {
    const have = new Set(t.scope.split(' '));
    return t.expiresAt - now >= minMs && scopes.every((s) => have.has(s));
  });
}

function storeIssued(c: Credential, scope: string, tokens: IssuedTokens, now: number): void {
  // The rotated refresh token first: the old one is spent, losing the new one loses the credential.
  if (tokens.refreshToken) c.refreshToken = tokens.refreshToken;
  c.accessTokens = [...c.accessTokens.filter((t) => t.scope !== scope && t.expiresAt > now), { scope, token: tokens.accessToken, expiresAt: tokens.expiresAt, issuedAt: now }];
  c.updatedAt = now;
}

/**
 * The wallet's source of tokens (one of the resolver's, src/auth/resolver.ts): a cached access
 * token covering the path with enough life left, a refresh grant for the
 * operation's scopes at the credential's prefix, or a token exchange. Concurrent needs for the
 * same (issuer, audience, scope set) make one call to the issuer; renewals run under the wallet's
 * file lock, so the agent and the CLI never spend the same refresh token twice.
 */
export function createTokenBroker(opts: TokenBrokerOptions) {
  const now = opts.now ?? Date.now;
  const inflight = new Map<string, Promise<AcquiredToken>>();
  let snapshot: { contents: WalletContents; mtimeMs: number; size: number; key: WalletKey } | undefined;

  async function contents(key: WalletKey): Promise<WalletContents> {
    const st = await stat(opts.wallet.path);
    if (snapshot && snapshot.key === key && snapshot.mtimeMs === st.mtimeMs && snapshot.size === st.size) return snapshot.contents;
    const fresh = await readWallet(opts.wallet.path, key);
    snapshot = { contents: fresh, mtimeMs: st.mtimeMs, size: st.size, key };
    return fresh;
  }

  function openKey(url: URL): WalletKey | undefined {
    const key = opts.wallet.key();
    if (key) return key;
    if (opts.wallet.initialized()) {
      throw waitingError('WALLET_CLOSED', 'the wallet is closed, so no token can be read for this transfer', 'open it with `petrel wallet open`; waiting transfers then go on by themselves');
    }
    if (issuerFor(opts.issuers, url)) throw waitingError('CREDENTIAL_NEEDED', `no credential for ${where(url)} yet`, warmHint(url));
    return undefined;
  }

  /** Refresh (or exchange) under the wallet lock; the freshest contents may already hold a token. */
  async function renew(key: WalletKey, credentialId: string, scopes: string[], url: URL | undefined, minMs = opts.minValidityMs): Promise<AcquiredToken> {
    const outcome = await renewLocked(key, credentialId, scopes, url, minMs);
    if (outcome instanceof PetrelError) throw outcome;
    return outcome;
  }

  function renewLocked(key: WalletKey, credentialId: string, scopes: string[], url: URL | undefined, minMs: number): Promise<AcquiredToken | PetrelError> {
    const scope = scopeKey(scopes);
    const background = url === undefined;
    return transactWallet<AcquiredToken | PetrelError>(opts.wallet.path, key, async (c) => {
      const cred = c.credentials[credentialId];
      if (!cred || cred.dead) throw waitingError(cred ? 'CREDENTIAL_DEAD' : 'CREDENTIAL_NEEDED', `the credential ${credentialId} is gone or dead`, url ? warmHint(url) : 'run `petrel warm <url>`');
      const t = now();
      const fresh = cachedToken(cred, scopes, t, minMs);
      if (fresh) return { result: { token: fresh.token, source: 'cache', expiresAt: fresh.expiresAt, credentialId }, changed: false };
      const client = c.clients[cred.client ?? cred.issuer];
      if (!client) throw waitingError('CREDENTIAL_NEEDED', `the wallet has no client registration for ${cred.issuer}`, url ? warmHint(url) : 'run `petrel warm <url>`');
      const ask = { scopes, audience: cred.audience };
      let issued: IssuedTokens;
      let source: AcquiredToken['source'];
      try {
        if (cred.refreshToken) {
          issued = await opts.oidc.refresh(client, cred.refreshToken, ask);
          source = 'refresh';
        } else {
          const subject = exchangeSubject(cred, t);
          issued = await opts.oidc.exchange(client, subject, { ...ask, wantRefresh: true });
          source = 'exchange';
        }
      } catch (e) {
        if (e instanceof PetrelError && e.code === 'CREDENTIAL_DEAD') {
          cred.dead = true;
          cred.updatedAt = t;
          opts.logger.warn('credential is dead', { walletEntry: credentialId, issuer: cred.issuer });
          return { result: new PetrelError('CREDENTIAL_DEAD', e.message, { hint: url ? warmHint(url) : e.hint }), changed: true };
        }
        // Issuer down: a token that is still valid keeps transfers going.
        const usable = background ? undefined : cachedToken(cred, scopes, t, FALLBACK_MARGIN_MS);
        if (usable && e instanceof PetrelError && e.transient) {
          opts.logger.warn('token renewal failed; using the current token while it lasts', { walletEntry: credentialId, code: e.code, reason: e.message });
          return { result: { token: usable.token, source: 'cache', expiresAt: usable.expiresAt, credentialId }, changed: false };
        }
        throw e;
      }
      storeIssued(cred, scope, issued, t);
      opts.logger.info('token renewed', { walletEntry: credentialId, issuer: cred.issuer, scope, via: source, expiresAt: new Date(issued.expiresAt).toISOString() });
      return { result: { token: issued.accessToken, source, expiresAt: issued.expiresAt, credentialId }, changed: true };
    });
  }

  function exchangeSubject(cred: Credential, t: number): string {
    const exchangeable = opts.issuers.some((s) => s.issuer === cred.issuer && s.tokenExchange);
    const subject = exchangeable ? cachedToken(cred, [], t, FALLBACK_MARGIN_MS) : undefined;
    if (!subject) {
      throw waitingError('CREDENTIAL_NEEDED', `the credential ${cred.id} has no refresh token and its access token has run out`, `log in again with \`petrel warm ${cred.prefixes[0] ?? '<url>'}\``);
    }
    return subject.token;
  }

  function singleFlight(flightKey: string, fn: () => Promise<AcquiredToken>): Promise<AcquiredToken> {
    let p = inflight.get(flightKey);
    if (!p) {
      p = fn().finally(() => inflight.delete(flightKey));
      inflight.set(flightKey, p);
    }
    return p;
  }

  return {
    /**
     * The token for one transfer, or undefined when none is called for (no wallet, no issuer
     * configured for the URL: the storage decides). Throws a waiting error (WAITING_CODES) when
     * the user must act, and a transient one when the issuer cannot be reached.
     */
    async acquire(need: TokenNeed): Promise<AcquiredToken | undefined> {
      const key = openKey(need.url);
      if (!key) return undefined;
      const { choice, dead } = choose(await contents(key), need);
      if (dead) throw waitingError('CREDENTIAL_DEAD', `the credential ${dead.id} for ${where(need.url)} was refused by ${dead.issuer}`, warmHint(need.url));
      if (!choice) {
        // Open wallet, no credential: only a prefix with a configured issuer needs one; elsewhere
        // the storage decides (public data), as without a wallet.
        if (issuerFor(opts.issuers, need.url)) {
          throw waitingError('CREDENTIAL_NEEDED', `the wallet has no credential for ${operationVerb(need.operation)} ${where(need.url)}`, warmHint(need.url, need.operation));
        }
        return undefined;
      }
      const { credential, scopes } = choice;
      const cached = cachedToken(credential, scopes, now(), opts.minValidityMs);
      if (cached) return { token: cached.token, source: 'cache', expiresAt: cached.expiresAt, credentialId: credential.id };
      const flightKey = `${credential.id}\n${credential.issuer}\n${credential.audience ?? ''}\n${scopeKey(scopes)}`;
      return singleFlight(flightKey, () => renew(key, credential.id, scopes, need.url));
    },

    /**
     * Background refresh: renews the cached access tokens of live credentials with a refresh
     * token that are due (renewalThreshold). One issuer call per (credential, scope set).
     */
    async refreshExpiring(windowMs: number, skip: (credentialId: string) => boolean = () => false): Promise<RefreshOutcome> {
      const key = opts.wallet.key();
      if (!key) throw new PetrelError('WALLET_CLOSED', 'the wallet is closed', { hint: 'open it with `petrel wallet open`' });
      const out: RefreshOutcome = { refreshed: [], failed: [] };
      const t = now();
      const wallet = await contents(key);
      for (const cred of Object.values(wallet.credentials)) {
        if (cred.dead || !cred.refreshToken || skip(cred.id)) continue;
        for (const due of cred.accessTokens) {
          const threshold = renewalThreshold(due, windowMs, opts.minValidityMs);
          if (due.expiresAt - t >= threshold) continue;
          const scope = due.scope;
          const scopes = scope.split(' ');
          const flightKey = `${cred.id}\n${cred.issuer}\n${cred.audience ?? ''}\n${scope}`;
          try {
            const got = await singleFlight(flightKey, () => renew(key, cred.id, scopes, undefined, threshold));
            if (got.source !== 'cache') out.refreshed.push({ credential: cred.id, scope, expiresAt: new Date(got.expiresAt ?? 0).toISOString() });
          } catch (e) {
            const err = e instanceof PetrelError ? e : new PetrelError('INTERNAL', String(e));
            out.failed.push({ credential: cred.id, code: err.code, message: err.message });
            break;
          }
        }
      }
      return out;
    },

    /** The wallet closed: drop everything decrypted from it. */
    forget(): void {
      snapshot = undefined;
    },
  };
}

export type TokenBroker = ReturnType<typeof createTokenBroker>;
