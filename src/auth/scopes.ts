/** WLCG storage scopes and their SciTokens spellings (protocols.md §4). */
import type { TokenOperation } from '../domain.js';

export type Operation = TokenOperation;
/** What a scope may allow: a token operation, or removing (rm), which only storage.modify grants. */
export type ScopeOperation = Operation | 'delete';

const SCOPE_NAMES: Record<ScopeOperation, { wlcg: readonly string[]; scitokens: readonly string[] }> = {
  read: { wlcg: ['storage.read'], scitokens: ['read'] },
  // create uploads new files; modify also overwrites, and implies create.
  write: { wlcg: ['storage.create', 'storage.modify'], scitokens: ['write'] },
  stage: { wlcg: ['storage.stage'], scitokens: [] },
  delete: { wlcg: ['storage.modify'], scitokens: ['write'] },
};

export interface ParsedScope {
  name: string;
  /** `/` when the scope carries no path. */
  path: string;
}

/** `storage.read:/data` → {name, path}; scopes without a path (openid, offline_access) → undefined. */
export function parseScope(scope: string): ParsedScope | undefined {
  const i = scope.indexOf(':');
  if (i < 0) return undefined;
  return { name: scope.slice(0, i), path: scope.slice(i + 1) || '/' };
}

/** A scope path covers `path` when it is the path or one of its parent directories. */
export function pathCovers(scopePath: string, path: string): boolean {
  const base = scopePath.replace(/\/+$/, '');
  return base === '' || path === base || path.startsWith(`${base}/`);
}

/** Whether one scope grants `op` on `path`. */
export function scopeGrants(scope: string, op: ScopeOperation, path: string): boolean {
  const parsed = parseScope(scope);
  if (!parsed) return false;
  const names = SCOPE_NAMES[op];
  return (names.wlcg.includes(parsed.name) || names.scitokens.includes(parsed.name)) && pathCovers(parsed.path, path);
}

/** Whether a space-separated scope claim allows `op` on `path`. */
export function scopeAllows(scope: string, op: ScopeOperation, path: string): boolean {
  return scope.split(/\s+/).some((s) => scopeGrants(s, op, path));
}

/** The narrowest WLCG scope an operation on `path` needs: what to name in errors. */
export function neededScope(op: ScopeOperation, path: string): string {
  return `${{ read: 'storage.read', write: 'storage.create', stage: 'storage.stage', delete: 'storage.modify' }[op]}:${path}`;
}

/** The WLCG scopes a warm asks for at a prefix path: read always, write and stage on request. */
export function scopesToWarm(path: string, ops: { write?: boolean; stage?: boolean }): string[] {
  const scopes = [`storage.read:${path}`];
  if (ops.write) scopes.push(`storage.create:${path}`, `storage.modify:${path}`);
  if (ops.stage) scopes.push(`storage.stage:${path}`);
  return scopes;
}

/** A scope set as the cache keys it: sorted, deduplicated, space-separated. */
export function scopeKey(scopes: Iterable<string>): string {
  return [...new Set(scopes)].sort().join(' ');
}

/** Maps a storage URL path to the token's scope path, relative to the storage's base path. */
export function scopePath(urlPath: string, basePath = '/'): string | undefined {
  const base = basePath.replace(/\/+$/, '');
  if (base === '') return urlPath;
  if (urlPath === base) return '/';
  return urlPath.startsWith(`${base}/`) ? urlPath.slice(base.length) : undefined;
}

export const operationVerb = (op: ScopeOperation): string => ({ read: 'reading', write: 'writing', stage: 'staging', delete: 'removing' })[op];
