// The subpath alone: all of jose costs an idle agent ~3.5 MB, and here only a payload is read.
import { decodeJwt } from 'jose/jwt/decode';
import { credentialId, scopesToWarm, type WarmTarget } from '../auth/index.js';
import { PetrelError } from '../errors.js';
import type { Namespace, Route } from './router.js';

const decoded = (path: string): string => {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
};

/** The path the namespace's scopes are relative to: Token-Generation's base-path, else its prefix. */
export const scopeBase = (ns: Namespace): string => ns.tokenGeneration?.basePath ?? ns.prefix;

/** An object's path as the namespace's tokens name it: relative to the base path. */
export function scopedPath(objectPath: string, ns: Namespace): string {
  const path = decoded(objectPath);
  const base = scopeBase(ns).replace(/\/+$/, '');
  if (base === '') return path;
  if (path === base) return '/';
  return path.startsWith(`${base}/`) ? path.slice(base.length) : path;
}

/**
 * The scope path a login asks for (pelican.md §4): the object's path relative to the base path,
 * reduced to its directory (a URL ending in `/` is one), cut to max-scope-depth components.
 */
export function scopePathToAsk(objectPath: string, ns: Namespace): string {
  const rel = scopedPath(objectPath, ns);
  const dir = objectPath.endsWith('/') ? rel : rel.slice(0, rel.lastIndexOf('/'));
  let parts = dir.split('/').filter(Boolean);
  const depth = ns.tokenGeneration?.maxScopeDepth;
  if (depth !== undefined && depth > 0) parts = parts.slice(0, depth);
  return `/${parts.join('/')}`;
}

/** The wallet prefix of a namespace's credential: `pelican://host/prefix` (or `osdf:///prefix`). */
export const namespacePrefix = (ns: Namespace): string => `${ns.federation}${ns.prefix === '/' ? '' : ns.prefix}`;

/**
 * What `petrel warm` logs in for, for one federation URL: the issuer the director's
 * Token-Generation header names, the scopes computed from the namespace, a credential for the
 * namespace prefix and issuer. Only Pelican's OAuth2 strategy can be followed (not Vault).
 */
export function warmTargetFor(route: Route, url: URL, ops: { write?: boolean; stage?: boolean }): WarmTarget {
  const ns = route.namespace;
  const gen = ns.tokenGeneration;
  const where = namespacePrefix(ns);
  if (!gen) {
    throw new PetrelError('NO_ISSUER', `the director of ${ns.federation} names no token issuer for ${where}`, {
      hint: ns.requireToken ? 'get a token from the namespace\'s issuer yourself and pass it with --token FILE' : 'the namespace is public: reading needs no login',
    });
  }
  if (gen.strategy && gen.strategy.toLowerCase() !== 'oauth2') {
    throw new PetrelError('NO_ISSUER', `${where} issues tokens by "${gen.strategy}", which petrel cannot follow (only OAuth2)`, { hint: 'get a token yourself and pass it with --token FILE' });
  }
  if (ns.issuers.length && !ns.issuers.includes(gen.issuer)) {
    throw new PetrelError('FEDERATION_ISSUER_UNTRUSTED', `the director names ${gen.issuer} to log in at, but ${where} trusts only ${ns.issuers.join(', ')}`, { hint: 'tell the federation operators' });
  }
  return {
    setting: { prefix: where, issuer: gen.issuer, basePath: scopeBase(ns), tokenExchange: false },
    scopes: scopesToWarm(scopePathToAsk(route.object.path, ns), ops),
    urls: [url],
    // Keyed by (namespace, issuer): a namespace may trust more than one.
    credentialId: `${credentialId(where)}@${new URL(gen.issuer).host}`,
  };
}

/** A token given for a federation URL must come from an issuer its namespace trusts. */
export function checkTokenIssuer(token: string, route: Route): void {
  const ns = route.namespace;
  if (!ns.issuers.length) return;
  let iss: unknown;
  try {
    iss = decodeJwt(token).iss;
  } catch {
    return; // not a JWT: the storage decides
  }
  if (typeof iss === 'string' && !ns.issuers.includes(iss)) {
    throw new PetrelError('FEDERATION_ISSUER_UNTRUSTED', `the token was issued by ${iss}, but ${namespacePrefix(ns)} trusts tokens only from ${ns.issuers.join(', ')}`, {
      hint: `get one from its issuer: \`petrel warm ${route.object.federation}${route.object.path}\`, or pass a token from ${ns.issuers[0]} with --token FILE`,
    });
  }
}
