import { setTimeout as sleep } from 'node:timers/promises';
import type * as Htmlparser2 from 'htmlparser2';
import { PetrelError } from '../errors.js';
import { httpError } from './errors.js';
import { bodyText, discard, send, type HttpClient } from './http.js';

/** One entry of a WebDAV collection, or the resource itself (Depth: 0). */
export interface RemoteEntry {
  url: URL;
  /** The last path segment, decoded; checked to be a safe file name. */
  name: string;
  type: 'file' | 'dir';
  size: number | null;
  /** Epoch ms, when the server says. */
  mtime: number | null;
}

const PROPFIND_BODY = Buffer.from('<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/></D:prop></D:propfind>');

// eslint-disable-next-line no-control-regex
const UNSAFE = /[/\u0000-\u001f\u007f]/;

/** A name a listing may give a local file: never a path, `.`, `..`, NUL or a control character. */
function safeName(name: string, where: string): string {
  if (!name || name === '.' || name === '..' || UNSAFE.test(name)) {
    throw new PetrelError('TRANSFER_PROTOCOL', `the listing of ${where} names an entry ${JSON.stringify(name)} that cannot be a file name`, { hint: 'the storage answered something unsafe: nothing was written; tell its operators' });
  }
  return name;
}

const dirPath = (p: string) => (p.endsWith('/') ? p : `${p}/`);
const localName = (tag: string) => tag.slice(tag.indexOf(':') + 1).toLowerCase();

/** What one `<response>` of a multistatus said, before it is checked. */
interface DavResponse {
  href: string;
  isDir: boolean;
  size: string | undefined;
  mtime: string | undefined;
}

// Loaded at the first listing: htmlparser2 and its entity tables cost an idle agent ~4 MB.
let parserModule: Promise<typeof Htmlparser2> | undefined;
const loadParser = () => (parserModule ??= import('htmlparser2'));

/** The elements whose text a response is made of. */
const TEXT_OF = new Set(['href', 'getcontentlength', 'getlastmodified', 'status']);

/**
 * A streaming reader of a 207 multistatus: each `<response>` is handed on as soon as it is
 * complete, so a collection of 100,000 entries is never held whole (a DOM of it took hundreds
 * of MB). Namespace prefixes are dropped, as every WebDAV client does; of several propstats the
 * one with status 200 is taken.
 */
function multistatusReader(Parser: typeof Htmlparser2.Parser, onResponse: (r: DavResponse) => void) {
  let sawMultistatus = false;
  const stack: string[] = [];
  let text = '';
  let response: DavResponse | undefined;
  let prop: { isDir: boolean; size: string | undefined; mtime: string | undefined; status: string | undefined } | undefined;
  let chosen = false;
  const parser = new Parser(
    {
      onopentag(tag) {
        const name = localName(tag);
        stack.push(name);
        text = '';
        if (name === 'multistatus') sawMultistatus = true;
        else if (name === 'response') {
          response = { href: '', isDir: false, size: undefined, mtime: undefined };
          chosen = false;
        } else if (name === 'propstat') prop = { isDir: false, size: undefined, mtime: undefined, status: undefined };
        else if (name === 'collection' && prop && stack.at(-2) === 'resourcetype') prop.isDir = true;
      },
      ontext(data) {
        if (TEXT_OF.has(stack.at(-1) ?? '')) text += data;
      },
      onclosetag(tag) {
        const name = localName(tag);
        stack.pop();
        if (name === 'href' && response && stack.at(-1) === 'response') response.href = text.trim();
        else if (prop && name === 'getcontentlength') prop.size = text.trim();
        else if (prop && name === 'getlastmodified') prop.mtime = text.trim();
        else if (prop && name === 'status') prop.status = text.trim();
        else if (name === 'propstat' && prop && response) {
          // The 200 propstat wins; without one, the first is taken.
          const ok = !prop.status || / 200 /.test(prop.status);
          if (ok || !chosen) Object.assign(response, { isDir: prop.isDir, size: prop.size, mtime: prop.mtime });
          chosen ||= ok;
          prop = undefined;
        } else if (name === 'response' && response) {
          const done = response;
          response = undefined;
          if (done.href) onResponse(done);
        }
        text = '';
      },
    },
    { xmlMode: true, decodeEntities: true },
  );
  const decoder = new TextDecoder('utf-8');
  return {
    write: (chunk: Uint8Array) => parser.write(decoder.decode(chunk, { stream: true })),
    end(): boolean {
      parser.write(decoder.decode());
      parser.end();
      return sawMultistatus;
    },
  };
}

/**
 * PROPFIND with Depth 0 (the resource) or 1 (a collection's entries, never infinity, which
 * XRootD and dCache refuse or make slow), each entry handed to `onEntry` as it is read. Hrefs
 * are decoded and resolved against the request; an entry outside the requested collection, on
 * another host, or with an unsafe name, is refused: the listing fails at it.
 */
export async function propfindEach(client: HttpClient, url: URL, token: string | null, depth: 0 | 1, onEntry: (e: RemoteEntry) => void, signal?: AbortSignal): Promise<void> {
  const res = await send(client, {
    method: 'PROPFIND',
    url,
    token,
    headers: { Depth: String(depth), 'Content-Type': 'application/xml; charset=utf-8', 'Content-Length': String(PROPFIND_BODY.length) },
    writeBody: (w) => w.end(PROPFIND_BODY),
    signal: signal ?? AbortSignal.timeout(120_000),
  });
  if (res.status !== 207) throw httpError('listing', url, res.status, await bodyText(res.body));
  const base = new URL(res.url.href);
  const self = dirPath(decodeURIComponent(base.pathname));
  const { Parser } = await loadParser();
  const reader = multistatusReader(Parser, (r) => {
    const entry = entryOf(r, base, self, url, depth);
    if (entry) onEntry(entry);
  });
  try {
    for await (const chunk of res.body) reader.write(chunk as Uint8Array);
  } catch (e) {
    res.body.destroy();
    throw e;
  }
  if (!reader.end()) throw new PetrelError('TRANSFER_PROTOCOL', `the listing of ${url.href} is not a WebDAV multistatus answer`, { hint: 'tell the storage operators' });
}

/** A response checked and made an entry; undefined for a collection's own entry (Depth: 1). */
function entryOf(r: DavResponse, base: URL, self: string, url: URL, depth: 0 | 1): RemoteEntry | undefined {
  const at = new URL(r.href, base);
  if (at.origin !== base.origin) throw new PetrelError('TRANSFER_PROTOCOL', `the listing of ${url.href} names ${at.href}, on another storage`, { hint: 'nothing was written; tell the storage operators' });
  let path: string;
  try {
    path = decodeURIComponent(at.pathname);
  } catch {
    throw new PetrelError('TRANSFER_PROTOCOL', `the listing of ${url.href} names ${JSON.stringify(r.href)}, which is not a valid URL path`, { hint: 'tell the storage operators' });
  }
  if (depth === 1 && dirPath(path) === self) return undefined;
  const trimmed = path.replace(/\/+$/, '');
  let name: string;
  if (depth === 1) {
    name = trimmed.slice(self.length);
    if (!path.startsWith(self) || !name) throw new PetrelError('TRANSFER_PROTOCOL', `the listing of ${url.href} names ${path}, outside it`, { hint: 'nothing was written; tell the storage operators' });
    safeName(name, url.href);
  } else {
    name = trimmed.split('/').pop() ?? '';
  }
  const size = r.size !== undefined && /^\d+$/.test(r.size) ? Number(r.size) : null;
  const mtime = r.mtime ? Date.parse(r.mtime) : NaN;
  const entryUrl = new URL(base.href);
  // A collection's URL ends in / (some servers redirect without it, and a walk lists it next).
  entryUrl.pathname = r.isDir ? dirPath(at.pathname) : at.pathname;
  return { url: entryUrl, name, type: r.isDir ? 'dir' : 'file', size: r.isDir ? null : size, mtime: Number.isNaN(mtime) ? null : mtime };
}

/** The whole answer of propfindEach, for a resource or a collection of modest size (ls, stat). */
export async function propfind(client: HttpClient, url: URL, token: string | null, depth: 0 | 1, signal?: AbortSignal): Promise<RemoteEntry[]> {
  const entries: RemoteEntry[] = [];
  await propfindEach(client, url, token, depth, (e) => entries.push(e), signal);
  return entries;
}

/** An entry met on a walk, with its path below the walk's root (segments as the listing names them). */
export interface TreeEntry extends RemoteEntry {
  rel: string[];
}

export interface WalkOptions {
  /** Listings at once (each PROPFIND Depth: 1). */
  concurrency?: number;
  /** The token for each listing: asked again per directory, so a long walk outlives one token. */
  token(): Promise<string | null> | string | null;
  /**
   * Each entry as it is read: a file at once, a directory once its parent's listing has ended
   * (it is walked later). After a retried listing a file may come twice: the receiver dedupes.
   */
  onEntry(entry: TreeEntry): void;
  /** A directory's listing ended (entries so far may be stored: nothing of it comes again). */
  onDirectory?(url: URL): void;
  /** Whether a failed listing is tried again, and after how many ms (undefined: it is not). */
  retry?(error: unknown, attempt: number): number | undefined;
  signal?: AbortSignal;
}

const LISTING_TIMEOUT_MS = 120_000;

/**
 * Walks the collection `root` breadth-first, a level at a time, a few listings at once. Files
 * go to `onEntry` as they are parsed: nothing but the directories still to list is held.
 */
export async function walkRemote(client: HttpClient, root: URL, opts: WalkOptions): Promise<void> {
  const concurrency = opts.concurrency ?? 4;
  const listOne = async (d: { url: URL; rel: string[] }, next: { url: URL; rel: string[] }[]): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const dirs: TreeEntry[] = [];
      try {
        const timeout = AbortSignal.timeout(LISTING_TIMEOUT_MS);
        await propfindEach(client, d.url, await opts.token(), 1, (e) => {
          const entry = { ...e, rel: [...d.rel, e.name] };
          if (e.type === 'dir') dirs.push(entry);
          else opts.onEntry(entry);
        }, opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout);
      } catch (e) {
        const delay = opts.signal?.aborted ? undefined : opts.retry?.(e, attempt);
        if (delay === undefined) throw e;
        await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : {});
        continue;
      }
      for (const dir of dirs) {
        next.push({ url: dir.url, rel: dir.rel });
        opts.onEntry(dir);
      }
      opts.onDirectory?.(d.url);
      return;
    }
  };
  let level: { url: URL; rel: string[] }[] = [{ url: root, rel: [] }];
  while (level.length) {
    const next: { url: URL; rel: string[] }[] = [];
    for (let i = 0; i < level.length; i += concurrency) {
      opts.signal?.throwIfAborted();
      await Promise.all(level.slice(i, i + concurrency).map((d) => listOne(d, next)));
    }
    level = next;
  }
}

/** A remote directory tree: its files, and its directories (itself first), breadth-first. */
export interface RemoteTree {
  files: { url: URL; rel: string[] }[];
  dirs: URL[];
}

/** The whole tree under `root`, collected (rm -r, which removes the files, then the directories deepest first). */
export async function walkTree(client: HttpClient, root: URL, token: string | null, concurrency = 4): Promise<RemoteTree> {
  const tree: RemoteTree = { files: [], dirs: [root] };
  await walkRemote(client, root, { concurrency, token: () => token, onEntry: (e) => (e.type === 'dir' ? tree.dirs.push(e.url) : tree.files.push({ url: e.url, rel: e.rel })) });
  return tree;
}

/** Deletes one file or (empty) collection; a 404 is an error naming it. */
export async function deleteEntry(client: HttpClient, url: URL, token: string | null): Promise<void> {
  const res = await send(client, { method: 'DELETE', url, token, signal: AbortSignal.timeout(60_000) });
  if (res.status >= 300) throw httpError('removing', url, res.status, await bodyText(res.body));
  await discard(res.body);
}

/**
 * MKCOL: makes the collection `url` (ending in /); one that is there already (405) is fine, and
 * a missing parent (409) is made first, up to the storage's root.
 */
export async function makeCollection(client: HttpClient, url: URL, token: string | null, signal?: AbortSignal): Promise<void> {
  const res = await send(client, { method: 'MKCOL', url, token, signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(60_000)]) : AbortSignal.timeout(60_000) });
  const text = await bodyText(res.body);
  if (res.status < 300 || res.status === 405) return;
  const parent = new URL('..', url);
  if (res.status === 409 && parent.pathname !== url.pathname && parent.pathname !== '/') {
    await makeCollection(client, parent, token, signal);
    return makeCollection(client, url, token, signal);
  }
  throw httpError('creating the directory', url, res.status, text);
}
