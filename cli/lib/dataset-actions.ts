import { PetrelError } from '../../src/errors.js';
import { deleteEntry, isChecksumAlgorithm, isFederated, propfind, remoteDigest, walkTree, type RemoteEntry } from '../../src/transfer/index.js';
import { EXIT, formatBytes, print, printJson } from './output.js';
import { remoteSession, remoteUrls } from './remote-tokens.js';
import { readSecretFile } from './secret-file.js';
import { checkToken } from './token-uses.js';

interface EntryJson {
  url: string;
  name: string;
  type: 'file' | 'dir';
  size: number | null;
  mtime: string | null;
  checksum?: string;
}

const asJson = (e: RemoteEntry, checksum?: string): EntryJson => ({
  url: e.url.href,
  name: e.name,
  type: e.type,
  size: e.size,
  mtime: e.mtime === null ? null : new Date(e.mtime).toISOString(),
  ...(checksum ? { checksum } : {}),
});

function line(e: EntryJson, long: boolean): string {
  const name = e.type === 'dir' ? `${e.name}/` : e.name;
  if (!long) return name;
  const size = e.type === 'dir' ? '-' : e.size === null ? '?' : formatBytes(e.size);
  return `${e.type === 'dir' ? 'd' : '-'} ${size.padStart(10)} ${(e.mtime ?? '-').padEnd(24)} ${name}${e.checksum ? `  ${e.checksum}` : ''}`;
}

function algorithmOf(text: string | undefined) {
  if (text === undefined) return undefined;
  if (!isChecksumAlgorithm(text)) throw new PetrelError('USAGE', `--checksum ${text}: not adler32, md5 or crc32c`);
  return text;
}

/** `petrel ls [-l] [--json] [--checksum ALG] URL...`: a collection's entries (PROPFIND, Depth 1), or the file itself. */
export async function ls(texts: string[], opts: { long?: boolean; json?: boolean; token?: string; checksum?: string }): Promise<number> {
  const urls = remoteUrls(texts, 'storage directories or files');
  const algo = algorithmOf(opts.checksum);
  const session = await remoteSession(opts);
  try {
    const out: { url: string; entries: EntryJson[] }[] = [];
    for (const url of urls) {
      const at = await session.locate(url, 'list');
      const token = at.needsToken ? ((await session.tokens.resolve({ url, operation: 'read' }))?.token ?? null) : null;
      const [self] = await propfind(session.http, at.url, token, 0);
      const entries = self?.type === 'dir' ? await propfind(session.http, at.url, token, 1) : self ? [self] : [];
      entries.sort((a, b) => a.name.localeCompare(b.name));
      const rows = [];
      for (const e of entries) {
        const digest = algo && e.type === 'file' ? await remoteDigest(session.http, e.url, token, algo, AbortSignal.timeout(300_000), e.size) : undefined;
        rows.push(asJson({ ...e, url: at.shown(e.url) }, digest ? `${algo}:${digest}` : undefined));
      }
      out.push({ url: url.href, entries: rows });
    }
    if (opts.json) printJson(out.length === 1 ? out[0]?.entries : out);
    else
      for (const [i, o] of out.entries()) {
        if (out.length > 1) print(`${i ? '\n' : ''}${o.url}:`);
        for (const e of o.entries) print(line(e, Boolean(opts.long) || Boolean(algo)));
      }
    return EXIT.ok;
  } finally {
    await session.close();
  }
}

/** `petrel stat [--json] [--checksum ALG] URL...`: type, size, modification time (PROPFIND, Depth 0). */
export async function stat(texts: string[], opts: { json?: boolean; token?: string; checksum?: string }): Promise<number> {
  const urls = remoteUrls(texts, 'storage files or directories');
  const algo = algorithmOf(opts.checksum);
  const session = await remoteSession(opts);
  try {
    const rows: EntryJson[] = [];
    for (const url of urls) {
      const at = await session.locate(url, 'list');
      const token = at.needsToken ? ((await session.tokens.resolve({ url, operation: 'read' }))?.token ?? null) : null;
      const [self] = await propfind(session.http, at.url, token, 0);
      if (!self) throw new PetrelError('TRANSFER_NOT_FOUND', `${url.href}: the storage says nothing of it`);
      const digest = algo && self.type === 'file' ? await remoteDigest(session.http, at.url, token, algo, AbortSignal.timeout(300_000), self.size) : undefined;
      rows.push(asJson({ ...self, url: at.shown(self.url) }, digest ? `${algo}:${digest}` : undefined));
    }
    if (opts.json) printJson(rows);
    else
      for (const r of rows) {
        print(`${r.url}\n  type: ${r.type}${r.type === 'file' ? `\n  size: ${r.size ?? '?'}` : ''}\n  modified: ${r.mtime ?? '-'}${r.checksum ? `\n  checksum: ${r.checksum}` : ''}`);
      }
    return EXIT.ok;
  } finally {
    await session.close();
  }
}

/** `petrel rm [-r] [--force] URL...`: DELETE; -r removes a tree, files first, deepest directories last. */
export async function rm(texts: string[], opts: { recursive?: boolean; force?: boolean; json?: boolean; token?: string }): Promise<number> {
  const urls = remoteUrls(texts, 'storage files or directories');
  for (const url of urls) {
    const depth = url.pathname.split('/').filter(Boolean).length;
    // A federation URL is checked against its namespace's own root below.
    if (depth < 2 && !opts.force && !isFederated(url)) {
      throw new PetrelError('USAGE', `refusing to remove ${url.href}: it is the root of the storage or of a namespace`, { hint: 'name what is below it, or pass --force if you mean it' });
    }
  }
  // An explicit token is checked first: removing needs storage.modify, which create does not give.
  if (opts.token) await checkToken(await readSecretFile(opts.token, 'token'), urls.map((url) => ({ op: 'delete' as const, url })));
  const session = await remoteSession(opts);
  const removed: string[] = [];
  try {
    for (const url of urls) {
      const at = await session.locate(url, 'delete');
      if (at.namespace !== undefined && decodeURIComponent(url.pathname).replace(/\/+$/, '') === at.namespace && !opts.force) {
        throw new PetrelError('USAGE', `refusing to remove ${url.href}: it is the root of the namespace ${at.namespace}`, { hint: 'name what is below it, or pass --force if you mean it' });
      }
      const token = (await session.tokens.resolve({ url, operation: 'write' }))?.token ?? null;
      const [self] = await propfind(session.http, at.url, token, 0);
      if (!self) throw new PetrelError('TRANSFER_NOT_FOUND', `${url.href}: no such file or directory`);
      if (self.type === 'dir' && !opts.recursive) throw new PetrelError('USAGE', `${url.href} is a directory`, { hint: 'pass -r to remove it with everything in it' });
      // The files, then the directories from the deepest up: each is empty when its DELETE comes.
      const tree = self.type === 'dir' ? await walkTree(session.http, self.url, token) : { files: [{ url: at.url }], dirs: [] };
      for (const target of [...tree.files.map((f) => f.url), ...tree.dirs.reverse()]) {
        await deleteEntry(session.http, target, token);
        removed.push(at.shown(target).href);
      }
    }
    if (opts.json) printJson({ removed });
    else print(`removed ${removed.length} ${removed.length === 1 ? 'entry' : 'entries'}`);
    return EXIT.ok;
  } finally {
    await session.close();
  }
}
