import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PetrelError } from '../errors.js';

export type Location = { kind: 'remote'; url: URL } | { kind: 'local'; path: string };

const SCHEMES: Record<string, string> = { 'https:': 'https:', 'http:': 'http:', 'davs:': 'https:', 'dav:': 'http:' };

/** A URL (https, http, davs, dav: the WebDAV ones as their HTTP twins) or a local path. */
export function parseLocation(text: string, cwd = process.cwd()): Location {
  // A scheme only with `//` after it: `run:1.root` is a local file name.
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (m && m[1]) {
    const scheme = `${m[1].toLowerCase()}:`;
    if (scheme === 'file:') {
      try {
        return { kind: 'local', path: fileURLToPath(text) };
      } catch (e) {
        throw new PetrelError('USAGE', `not a local file URL: ${text} (${(e as Error).message})`);
      }
    }
    if (FEDERATION_SCHEMES.has(scheme)) return { kind: 'remote', url: federationUrl(scheme, text.slice(m[0].length), text) };
    const http = SCHEMES[scheme];
    if (!http) {
      throw new PetrelError('USAGE', `unsupported URL scheme "${m[1]}" in ${text}`, { hint: 'use https://, http://, davs://, dav://, pelican://, osdf://, stash:// or a local path' });
    }
    let url: URL;
    try {
      url = new URL(`${http}//${text.slice(m[0].length)}`);
    } catch {
      throw new PetrelError('USAGE', `not a valid URL: ${text}`);
    }
    if (!url.hostname) throw new PetrelError('USAGE', `the URL ${text} names no host`);
    return { kind: 'remote', url };
  }
  return { kind: 'local', path: resolve(cwd, text) };
}

/** Pelican federations' schemes: `pelican://<federation host>/path`, and OSDF's `osdf:///path` (`stash:///path` is its old name). */
const FEDERATION_SCHEMES = new Set(['pelican:', 'osdf:', 'stash:']);

/** Whether a URL names an object in a federation, which its director routes to a server. */
export const isFederated = (url: URL): boolean => FEDERATION_SCHEMES.has(url.protocol);

/**
 * `pelican://host[:port]/path` as written (its host is the federation's discovery host);
 * `osdf:///path` and `stash:///path` as `osdf:///path`, with `osdf://a/b` read as `osdf:///a/b`
 * (as Pelican reads it).
 */
function federationUrl(scheme: string, rest: string, text: string): URL {
  let url: URL;
  try {
    url = scheme === 'pelican:' ? new URL(`pelican://${rest}`) : new URL(`osdf:///${rest.replace(/^\/+/, '')}`);
  } catch {
    throw new PetrelError('USAGE', `not a valid URL: ${text}`);
  }
  if (scheme === 'pelican:' && !url.hostname) {
    throw new PetrelError('USAGE', `the URL ${text} names no federation`, { hint: 'write pelican://<federation host>/<path>, or osdf:///<path> for the OSDF' });
  }
  if (url.pathname === '' || url.pathname === '/') throw new PetrelError('USAGE', `the URL ${text} names no path in its federation`);
  return url;
}

/** What the per-host limit counts against: scheme://host:port (a federation counts as one host). */
export function hostKey(url: URL): string {
  if (isFederated(url)) return `${url.protocol}//${url.host}`;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return `${url.protocol}//${url.hostname}:${port}`;
}

/** The file name a source gives a destination directory; never a path that could leave it. */
export function locationName(loc: Location): string {
  const where = loc.kind === 'local' ? loc.path : loc.url.href;
  const noName = () => new PetrelError('USAGE', `cannot tell a file name from ${where}`, { hint: 'name the source file itself, not a directory' });
  let name: string;
  if (loc.kind === 'local') {
    name = basename(loc.path);
  } else {
    const last = loc.url.pathname.slice(loc.url.pathname.lastIndexOf('/') + 1);
    try {
      name = decodeURIComponent(last);
    } catch {
      throw new PetrelError('USAGE', `the URL ${where} has a malformed percent-escape in its file name`);
    }
  }
  if (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw noName();
  return name;
}

export function locationText(loc: Location): string {
  return loc.kind === 'local' ? loc.path : loc.url.href;
}

/** The destination for one source when `dest` is a directory: the source's file name inside it. */
export function intoDirectory(dest: Location, source: Location): Location {
  const name = locationName(source);
  if (dest.kind === 'local') return { kind: 'local', path: join(dest.path, name) };
  const url = new URL(dest.url.href);
  url.pathname = `${url.pathname.replace(/\/*$/, '')}/${encodeURIComponent(name)}`;
  return { kind: 'remote', url };
}

/** Where the file at `rel` (path segments below a tree's root) goes under the directory `dest`. */
export function locationUnder(dest: Location, rel: readonly string[]): string {
  if (dest.kind === 'local') return join(dest.path, ...rel);
  const url = new URL(dest.url.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${rel.map(encodeURIComponent).join('/')}`;
  return url.href;
}
