/** The storage path the Tape REST API names a file by: the URL's path, decoded, with repeated slashes collapsed. */
export function storagePath(url: URL): string {
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    path = url.pathname;
  }
  return path.replace(/\/{2,}/g, '/');
}

/** Paths as a server may spell them back (extra slashes, a trailing one), compared as storagePath gives them. */
export function samePath(a: string, b: string): boolean {
  const norm = (p: string) => p.replace(/\/{2,}/g, '/').replace(/(.)\/$/, '$1');
  return norm(a) === norm(b);
}
