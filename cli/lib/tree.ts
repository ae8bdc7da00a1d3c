import { lstat, readdir } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import type { TransferSpec } from '../../src/api/index.js';
import type { TokenResolver } from '../../src/auth/index.js';
import { PetrelError } from '../../src/errors.js';
import { discard, parseLocation, propfind, send, walkTree, type HttpClient, type Location } from '../../src/transfer/index.js';
import type { Direction } from './plan.js';

/**
 * `-r`: a directory tree as transfers, by cp's and rsync's rule, for get, put and copy alike:
 * `SRC/dir` puts the tree under `DEST/dir/`, `SRC/dir/` (a trailing slash) puts its contents
 * directly into `DEST/`. Remote trees are listed one directory at a time (PROPFIND Depth: 1),
 * a few at once; local ones follow no symbolic link.
 */

export interface TreeContext {
  http: HttpClient;
  tokens: TokenResolver;
  /** The job's explicit token, used for listing and MKCOL when given. */
  token?: string | undefined;
}

async function tokenFor(ctx: TreeContext, url: URL, operation: 'read' | 'write'): Promise<string | null> {
  return ctx.token ?? (await ctx.tokens.resolve({ url, operation }))?.token ?? null;
}

/** Each file under a remote directory, with its path relative to it (segments as the listing names them). */
async function remoteFiles(ctx: TreeContext, root: URL): Promise<{ url: URL; rel: string[] }[]> {
  const token = await tokenFor(ctx, root, 'read');
  const [self] = await propfind(ctx.http, root, token, 0);
  if (!self) throw new PetrelError('TRANSFER_NOT_FOUND', `${root.href}: no such directory`);
  if (self.type !== 'dir') throw new PetrelError('USAGE', `${root.href} is a file, not a directory`, { hint: 'leave out -r to transfer one file' });
  return (await walkTree(ctx.http, root, token)).files;
}

/** Each regular file under a local directory; symbolic links are skipped, never followed out of the tree. */
async function localFiles(root: string): Promise<{ path: string; rel: string[] }[]> {
  const info = await lstat(root).catch(() => undefined);
  if (!info?.isDirectory()) throw new PetrelError('USAGE', `${root} is not a directory`, { hint: 'leave out -r to transfer one file' });
  const files: { path: string; rel: string[] }[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.push({ path, rel: relative(root, path).split(sep) });
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

const under = (dest: Location, rel: readonly string[]): string => {
  if (dest.kind === 'local') return join(dest.path, ...rel);
  const url = new URL(dest.url.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${rel.map(encodeURIComponent).join('/')}`;
  return url.href;
};

/** The directory name a source without a trailing slash brings along. */
function topName(text: string, loc: Location): string[] {
  if (/\/$/.test(text)) return [];
  const name = loc.kind === 'local' ? basename(loc.path) : decodeURIComponent(loc.url.pathname.replace(/\/+$/, '').split('/').pop() ?? '');
  if (!name || name === '..' || name === '.') throw new PetrelError('USAGE', `cannot tell a directory name from ${text}`, { hint: 'end it with / to transfer its contents' });
  return [name];
}

/** `petrel get|put|copy -r SRC... DEST`: every file of each source tree, and for a put the remote directories made first. */
export async function planTree(kind: Direction, sources: readonly string[], destText: string, ctx: TreeContext): Promise<TransferSpec[]> {
  const dest = parseLocation(destText);
  const specs: TransferSpec[] = [];
  const dirs = new Set<string>();
  for (const text of sources) {
    const loc = parseLocation(text);
    const top = topName(text, loc);
    if (loc.kind === 'local') {
      if (kind !== 'put') throw new PetrelError('USAGE', `\`petrel ${kind}\` takes URLs as sources: ${text} is a local path`, { hint: 'to upload, use `petrel put -r`' });
      for (const f of await localFiles(loc.path)) {
        specs.push({ source: f.path, destination: under(dest, [...top, ...f.rel]) });
        for (let i = 1; i < top.length + f.rel.length; i++) dirs.add(under(dest, [...top, ...f.rel].slice(0, i)));
      }
    } else {
      if (kind === 'put') throw new PetrelError('USAGE', `\`petrel put\` takes local sources: ${text} is a URL`, { hint: 'to download, use `petrel get -r`' });
      for (const f of await remoteFiles(ctx, loc.url)) specs.push({ source: f.url.href, destination: under(dest, [...top, ...f.rel]) });
    }
  }
  if (!specs.length) throw new PetrelError('USAGE', `no files under ${sources.join(', ')}`);
  if (kind === 'put' && dest.kind === 'remote') await makeCollections(ctx, [dest.url.href, ...[...dirs].sort((a, b) => a.length - b.length)]);
  return specs;
}

/** MKCOL each directory, parents first; one that is there already (405) is fine. */
async function makeCollections(ctx: TreeContext, dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) {
    const url = new URL(dir.endsWith('/') ? dir : `${dir}/`);
    const res = await send(ctx.http, { method: 'MKCOL', url, token: await tokenFor(ctx, url, 'write'), signal: AbortSignal.timeout(60_000) });
    await discard(res.body);
    if (res.status >= 300 && res.status !== 405) {
      throw new PetrelError('TRANSFER_REFUSED', `cannot create the directory ${url.href}: ${res.status}`, { hint: 'check that the token may write there (storage.create)' });
    }
  }
}
