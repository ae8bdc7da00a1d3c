import type { FederationSetting } from '../config.js';
import { PetrelError } from '../errors.js';

/** Where OSDF's discovery document is when config.json names no other (Pelican's default). */
export const OSDF_DISCOVERY = 'https://osg-htc.org';

/** An object in a federation: which one, where its discovery document is, and its path there. */
export interface FederatedObject {
  /** `pelican://host[:port]` or `osdf://`: what caches and messages key the federation by. */
  federation: string;
  /** `https://host[:port]`, whose `/.well-known/pelican-configuration` names the director. */
  discovery: URL;
  /** The object's path in the federation, percent-encoded as in the URL. */
  path: string;
  /** `?directread`: read from an origin, never a cache. */
  directRead: boolean;
}

/**
 * The federation of a pelican:// or osdf:// URL (src/transfer/location.ts parses them):
 * `osdf:///p` goes to the federation named `osdf` in config.json, else osg-htc.org; a
 * `pelican://name/p` whose host is a configured name goes to its discovery URL; any other
 * `pelican://host/p` to `https://host`.
 */
export function federatedObject(url: URL, federations: Readonly<Record<string, FederationSetting>>): FederatedObject {
  const directRead = url.searchParams.has('directread');
  if (url.protocol === 'osdf:' || url.protocol === 'stash:') {
    const discovery = federations.osdf?.discovery ?? federations.stash?.discovery ?? OSDF_DISCOVERY;
    return { federation: 'osdf://', discovery: new URL(discovery), path: url.pathname, directRead };
  }
  if (url.protocol !== 'pelican:' || !url.host) throw new PetrelError('USAGE', `${url.href} is not a federation URL`, { hint: 'write pelican://<federation host>/<path> or osdf:///<path>' });
  const named = federations[url.hostname];
  const discovery = new URL(named?.discovery ?? `https://${url.host}`);
  return { federation: `pelican://${url.host}`, discovery, path: url.pathname, directRead };
}

/** The object's URL at a server, `base` being the server's root for the federation's paths. */
export function objectAt(base: URL, path: string): URL {
  const url = new URL(base.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  url.search = '';
  return url;
}

/** The server root an object URL was built on: `https://cache:8443/ns/f` for `/ns/f` → `https://cache:8443/`. */
export function serverBase(url: URL, path: string): URL | undefined {
  if (!url.pathname.endsWith(path)) return undefined;
  const base = new URL(url.href);
  base.pathname = url.pathname.slice(0, url.pathname.length - path.length) || '/';
  base.search = '';
  base.hash = '';
  return base;
}

/** `https://host:port`, how a server is named to the user. */
export const serverName = (url: URL): string => url.origin;
