// The decoder alone: importing all of jose cost every transfer command 20 ms of start-up.
import { decodeJwt } from 'jose/jwt/decode';
import type { JWTPayload } from 'jose';
import { PetrelError } from '../errors.js';
import { neededScope, operationVerb, scopeAllows, type ScopeOperation } from './scopes.js';

export interface TokenVerdict {
  /** Said but not fatal (e.g. the token expires soon). */
  warnings: string[];
}

/**
 * Checks an explicit token before a job is queued: a JWT is decoded (not verified: only the
 * storage can do that) and refused when it has expired, is not valid yet, or has no scope for
 * one of the paths. Tokens that are not JWTs, or carry no scope claim, pass unchecked.
 */
/** One use of a token: an operation on a URL; `path`, when given, is the path as the token's scopes name it (a federation's base path taken off). */
export interface TokenUse {
  op: ScopeOperation;
  url: URL;
  path?: string | undefined;
}

export function checkTokenFor(token: string, uses: readonly TokenUse[], now = Date.now()): TokenVerdict {
  let claims: JWTPayload;
  try {
    claims = decodeJwt(token);
  } catch {
    return { warnings: [] };
  }
  const secs = Math.floor(now / 1000);
  if (typeof claims.exp === 'number' && claims.exp <= secs) {
    throw new PetrelError('TOKEN_REJECTED', `the token expired ${new Date(claims.exp * 1000).toISOString()}`, { hint: 'get a fresh token (e.g. `oidc-token`, `htgettoken`) and pass it with --token FILE' });
  }
  if (typeof claims.nbf === 'number' && claims.nbf > secs + 60) {
    throw new PetrelError('TOKEN_REJECTED', `the token is not valid before ${new Date(claims.nbf * 1000).toISOString()}`, { hint: "check the issuer's and this machine's clocks" });
  }
  const scope = typeof claims.scope === 'string' ? claims.scope : undefined;
  if (scope !== undefined) {
    for (const { op, url, path: scoped } of uses) {
      const path = scoped ?? decodeURIComponent(url.pathname);
      if (!scopeAllows(scope, op, path)) {
        throw new PetrelError('TOKEN_REJECTED', `the token's scopes (${scope}) do not allow ${operationVerb(op)} ${path}`, {
          hint: `it needs ${neededScope(op, path)} (or a scope for a parent directory)`,
        });
      }
    }
  }
  const warnings: string[] = [];
  if (typeof claims.exp === 'number' && claims.exp - secs < 300) {
    warnings.push(`the token expires in ${claims.exp - secs} s, maybe before the queue reaches every transfer; it is used as given and never refreshed`);
  }
  return { warnings };
}
