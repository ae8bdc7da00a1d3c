import { XMLParser } from 'fast-xml-parser';
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

const PROPFIND_BODY = '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/><D:getlastmodified/></D:prop></D:propfind>';
const parser = new XMLParser({ removeNSPrefix: true, ignoreAttributes: true, parseTagValue: false, isArray: (name) => name === 'response' || name === 'propstat' });

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

interface DavResponse {
  href?: string;
  propstat?: { prop?: { resourcetype?: unknown; getcontentlength?: string; getlastmodified?: string }; status?: string }[];
}

/**
 * PROPFIND with Depth 0 (the resource) or 1 (a collection's entries, never infinity, which
 * XRootD and dCache refuse or make slow). Hrefs are decoded and resolved against the request;
 * an entry outside the requested collection, or with an unsafe name, is refused.
 */
export async function propfind(client: HttpClient, url: URL, token: string | null, depth: 0 | 1, signal?: AbortSignal): Promise<RemoteEntry[]> {
  const body = Buffer.from(PROPFIND_BODY);
  const res = await send(client, {
    method: 'PROPFIND',
    url,
    token,
    headers: { Depth: String(depth), 'Content-Type': 'application/xml; charset=utf-8', 'Content-Length': String(body.length) },
    writeBody: (w) => w.end(body),
    signal: signal ?? AbortSignal.timeout(120_000),
  });
  if (res.status !== 207) {
    const text = await bodyText(res.body);
    throw httpError('listing', url, res.status, text);
  }
  const xml = await bodyText(res.body, 1 << 28);
  let doc: { multistatus?: { response?: DavResponse[] } };
  try {
    doc = parser.parse(xml) as typeof doc;
  } catch {
    throw new PetrelError('TRANSFER_PROTOCOL', `the listing of ${url.href} is not XML`, { hint: 'tell the storage operators' });
  }
  const base = new URL(res.url.href);
  const self = dirPath(decodeURIComponent(base.pathname));
  const entries: RemoteEntry[] = [];
  for (const r of doc.multistatus?.response ?? []) {
    if (!r.href) continue;
    const at = new URL(r.href, base);
    const path = decodeURIComponent(at.pathname);
    if (at.origin !== base.origin) throw new PetrelError('TRANSFER_PROTOCOL', `the listing of ${url.href} names ${at.href}, on another storage`, { hint: 'nothing was written; tell the storage operators' });
    const ok = (r.propstat ?? []).find((p) => !p.status || / 200 /.test(p.status)) ?? r.propstat?.[0];
    const prop = ok?.prop ?? {};
    const isDir = typeof prop.resourcetype === 'object' && prop.resourcetype !== null && 'collection' in prop.resourcetype;
    if (depth === 1 && dirPath(path) === self) continue;
    if (depth === 1) {
      const rest = path.replace(/\/+$/, '').slice(self.length);
      if (!path.startsWith(self) || !rest) throw new PetrelError('TRANSFER_PROTOCOL', `the listing of ${url.href} names ${path}, outside it`, { hint: 'nothing was written; tell the storage operators' });
      safeName(rest, url.href);
    }
    const name = depth === 1 ? path.replace(/\/+$/, '').slice(self.length) : (path.replace(/\/+$/, '').split('/').pop() ?? '');
    const size = prop.getcontentlength !== undefined && /^\d+$/.test(String(prop.getcontentlength)) ? Number(prop.getcontentlength) : null;
    const mtime = prop.getlastmodified ? Date.parse(String(prop.getlastmodified)) : NaN;
    const entryUrl = new URL(base.href);
    entryUrl.pathname = at.pathname;
    entries.push({ url: entryUrl, name, type: isDir ? 'dir' : 'file', size: isDir ? null : size, mtime: Number.isNaN(mtime) ? null : mtime });
  }
  return entries;
}

/** A remote directory tree: its files with their path below it, and its directories (itself first), breadth-first. */
export interface RemoteTree {
  files: { url: URL; rel: string[] }[];
  dirs: URL[];
}

/** Walks the collection `root` a level at a time, `concurrency` listings at once (each PROPFIND Depth: 1). */
export async function walkTree(client: HttpClient, root: URL, token: string | null, concurrency = 4): Promise<RemoteTree> {
  const tree: RemoteTree = { files: [], dirs: [] };
  let level: { url: URL; rel: string[] }[] = [{ url: root, rel: [] }];
  while (level.length) {
    const next: { url: URL; rel: string[] }[] = [];
    for (let i = 0; i < level.length; i += concurrency) {
      const batch = level.slice(i, i + concurrency);
      const listed = await Promise.all(batch.map((d) => propfind(client, d.url, token, 1)));
      batch.forEach((d, j) => {
        tree.dirs.push(d.url);
        for (const e of listed[j] ?? []) (e.type === 'dir' ? next : tree.files).push({ url: e.url, rel: [...d.rel, e.name] });
      });
    }
    level = next;
  }
  return tree;
}

/** Deletes one file or (empty) collection; a 404 is an error naming it. */
export async function deleteEntry(client: HttpClient, url: URL, token: string | null): Promise<void> {
  const res = await send(client, { method: 'DELETE', url, token, signal: AbortSignal.timeout(60_000) });
  if (res.status >= 300) throw httpError('removing', url, res.status, await bodyText(res.body));
  await discard(res.body);
}
