import { checkTokenFor, type TokenUse, type TokenVerdict } from '../../src/auth/index.js';
import { loadConfig } from '../../src/config.js';
import { resolvePaths } from '../../src/paths.js';
import { isFederated } from '../../src/transfer/index.js';

/** How many federation URLs of a job are routed for the check: one namespace answer serves the rest of a namespace. */
const ROUTED_AT_MOST = 10_000;

/**
 * Checks an explicit token against what a job does with it, before anything is queued:
 * expiry and scopes (src/auth/token-check.ts); for federation URLs also the issuer, which
 * the namespace must trust, and the scopes taken relative to its base path. Federation URLs are
 * routed through the director for this (one query per namespace).
 */
export async function checkToken(token: string, uses: readonly TokenUse[]): Promise<TokenVerdict> {
  if (!uses.some((u) => isFederated(u.url))) return checkTokenFor(token, uses);
  const [{ createConfiguredRouter, checkTokenIssuer, scopedPath }] = await Promise.all([import('../../src/federation/index.js')]);
  const router = createConfiguredRouter(await loadConfig(resolvePaths().configFile));
  const checked: TokenUse[] = [];
  let routed = 0;
  for (const use of uses) {
    if (!isFederated(use.url) || routed >= ROUTED_AT_MOST) {
      checked.push(use);
      continue;
    }
    routed++;
    const route = await router.route(use.url, use.op === 'read' || use.op === 'stage' ? 'read' : use.op === 'delete' ? 'delete' : 'write');
    checkTokenIssuer(token, route);
    checked.push({ ...use, op: use.op === 'stage' ? 'read' : use.op, path: scopedPath(use.url.pathname, route.namespace) });
  }
  return checkTokenFor(token, checked);
}
