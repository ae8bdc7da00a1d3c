import type { IssuerSetting } from '../config.js';
import { PetrelError } from '../errors.js';
import type { ClientRegistration, Credential, WalletContents, WalletKey } from '../wallet/index.js';
import { transactWallet, updateWallet, walletPresent } from '../wallet/index.js';
import { issuerFor } from './broker.js';
import type { DeviceLogin, IssuedTokens, Oidc } from './oidc.js';
import { parseScope, scopeKey, scopePath, scopesToWarm } from './scopes.js';

export interface WarmTarget {
  setting: IssuerSetting;
  /** The storage scopes asked for at the setting's prefix. */
  scopes: string[];
  urls: URL[];
  /** The wallet entry's id; by default the prefix without its scheme. */
  credentialId?: string | undefined;
}

/** Groups URLs by the issuer setting that serves them; a URL without one is an error naming the fix. */
export function warmTargets(issuers: readonly IssuerSetting[], urls: readonly URL[], ops: { write?: boolean; stage?: boolean }, configFile: string): WarmTarget[] {
  const byPrefix = new Map<string, WarmTarget>();
  for (const url of urls) {
    const setting = issuerFor(issuers, url);
    if (!setting) {
      throw new PetrelError('NO_ISSUER', `no issuer is configured for ${url.href}`, {
        hint: `add {"prefix": "${url.origin}/…", "issuer": "https://…"} to "issuers" in ${configFile}`,
      });
    }
    const path = scopePath(new URL(setting.prefix).pathname.replace(/\/+$/, '') || '/', setting.basePath) ?? '/';
    const target = byPrefix.get(setting.prefix) ?? { setting, scopes: [], urls: [] };
    target.scopes = [...new Set([...target.scopes, ...scopesToWarm(path, ops)])];
    target.urls.push(url);
    byPrefix.set(setting.prefix, target);
  }
  return [...byPrefix.values()];
}

/** A stable, readable credential id: the prefix without its scheme. */
export const credentialId = (prefix: string): string => prefix.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');

/** The wallet's client registration at the issuer, registering one (RFC 7591) if there is none. */
export async function ensureClient(oidc: Oidc, walletPath: string, key: WalletKey, issuer: string, scopes: string[]) {
  return transactWallet(walletPath, key, async (c: WalletContents) => {
    const existing = c.clients[issuer];
    if (existing) return { result: existing, changed: false };
    const registered = await oidc.register(issuer, ['openid', 'offline_access', ...scopes]);
    c.clients[issuer] = registered;
    return { result: registered, changed: true };
  });
}

/** Storage scopes only: `openid` and `offline_access` say nothing about what a token may do. */
const storageScopes = (scopes: readonly string[]) => scopes.filter((s) => parseScope(s) !== undefined);

/** Stores what a login or an import obtained as the credential for `setting`'s prefix. */
export async function storeCredential(
  walletPath: string,
  key: WalletKey,
  target: { setting: IssuerSetting; scopes: string[]; credentialId?: string | undefined },
  tokens: IssuedTokens,
  obtainedBy: Credential['obtainedBy'],
  client?: ClientRegistration,
): Promise<Credential> {
  // An imported client is kept beside the one `warm` registered, so neither's credentials break.
  const clientKey = client ? `${client.issuer}#${client.clientId}` : undefined;
  const now = Date.now();
  const granted = storageScopes(tokens.scope ? tokens.scope.split(' ') : target.scopes);
  const credential: Credential = {
    id: target.credentialId ?? credentialId(target.setting.prefix),
    issuer: target.setting.issuer,
    prefixes: [target.setting.prefix],
    basePath: target.setting.basePath,
    scopes: granted,
    ...(target.setting.audience ? { audience: target.setting.audience } : {}),
    ...(clientKey ? { client: clientKey } : {}),
    accessTokens: [{ scope: scopeKey(granted), token: tokens.accessToken, expiresAt: tokens.expiresAt, issuedAt: now }],
    ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}),
    obtainedBy,
    dead: false,
    updatedAt: now,
  };
  // One write for the client and the credential: the rotated refresh token is never left unsaved.
  await updateWallet(walletPath, key, (c) => {
    if (client && clientKey) c.clients[clientKey] = client;
    c.credentials[credential.id] = credential;
  });
  return credential;
}

export interface WarmOptions {
  oidc: Oidc;
  walletPath: string;
  key: WalletKey;
  /** Shows the user where to log in (the CLI prints it). */
  show(login: DeviceLogin, target: WarmTarget): void;
  signal?: AbortSignal;
}

/** Device-code login (RFC 8628) for one target; the credential lands in the wallet. */
export async function warmOne(target: WarmTarget, opts: WarmOptions): Promise<Credential> {
  if (!walletPresent(opts.walletPath)) throw new PetrelError('WALLET_NOT_INITIALIZED', 'there is no wallet', { hint: 'create one with `petrel wallet init`' });
  const { setting } = target;
  const client = await ensureClient(opts.oidc, opts.walletPath, opts.key, setting.issuer, target.scopes);
  const login = await opts.oidc.deviceLogin(client, { scopes: ['openid', 'offline_access', ...target.scopes], audience: setting.audience });
  opts.show(login, target);
  let tokens: IssuedTokens;
  try {
    tokens = await login.complete(opts.signal);
  } catch (e) {
    if (e instanceof PetrelError && (e.code === 'IDP_REFUSED' || e.code === 'CREDENTIAL_DEAD')) {
      throw new PetrelError('DEVICE_LOGIN_FAILED', `the login at ${setting.issuer} did not complete: ${e.message}`, { hint: `try again: \`petrel warm ${target.urls[0]?.href ?? setting.prefix}\`` });
    }
    throw e;
  }
  return storeCredential(opts.walletPath, opts.key, target, tokens, 'device');
}
