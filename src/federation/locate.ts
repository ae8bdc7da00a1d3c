import { PetrelError } from '../errors.js';
import { isFederated } from '../transfer/index.js';
import type { FederationRouter } from './router.js';

/** Where a request that moves no data (PROPFIND, MKCOL, DELETE) goes for a URL. */
export interface Located {
  /** The URL itself, or for a federation URL the same path at the origin its director names. */
  url: URL;
  /** Whether a token goes along: a federation's public namespace is listed without one. */
  needsToken: boolean;
  /** A federation URL's namespace prefix. */
  namespace?: string | undefined;
  /** An entry's URL at the server, as a URL of the user's federation (what is stored and printed). */
  shown(at: URL): URL;
}

export type LocateOperation = 'list' | 'delete' | 'write';

/**
 * Finds the server for a listing, a removal or a MKCOL: an https URL is its own; a federation
 * URL goes to its namespace's origin (or its collections URL for listings), which serves the
 * same paths, so entries found there map back onto federation URLs.
 */
export async function locate(router: Pick<FederationRouter, 'route'> | undefined, url: URL, op: LocateOperation): Promise<Located> {
  if (!isFederated(url)) return { url, needsToken: true, shown: (at) => at };
  if (!router) throw new PetrelError('USAGE', `${url.href}: federation URLs are not served here`, { hint: 'upgrade petrel' });
  const route = await router.route(url, op);
  const server = route.servers[0];
  if (!server) throw new PetrelError('FEDERATION_NOT_FOUND', `the director names no origin for ${url.href}`, { hint: 'tell the federation operators' });
  if (url.pathname.endsWith('/') && !server.pathname.endsWith('/')) server.pathname += '/';
  const federation = `${url.protocol}//${url.host}`;
  return {
    url: server,
    needsToken: op !== 'list' || route.namespace.requireToken,
    namespace: route.namespace.prefix,
    shown: (at) => new URL(`${federation}${at.pathname}`),
  };
}
