// A stand-in WebDAV storage holding a tree in memory: PROPFIND (Depth 0 and 1, answered the way
// XRootD answers them), GET and HEAD. It exists for what the test bed's XRootD cannot be made to
// do: hold a directory's listing until a test lets it go, or refuse one directory's listing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TestbedInfo } from '../testbed/index.js';
import { standIn } from './stand-in.js';

export interface DavTree {
  url: string;
  /** Paths of the PROPFINDs answered (or being answered), in order. */
  listings: string[];
  /** Paths of the GETs answered. */
  gets: string[];
  /** Holds the listing of `dir` (its path, ending in /) until the returned function is called. */
  hold(dir: string): () => void;
  /** Answers the listing of `dir` with `status` and `body` (`times` times, then normally). */
  refuse(dir: string, status: number, body: string, times?: number): void;
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** A stand-in storage serving `files` (path → content); directories are implied by the paths. */
export async function davTree(tb: Pick<TestbedInfo, 'tls'>, files: Record<string, Buffer>): Promise<DavTree> {
  const held = new Map<string, Promise<void>>();
  const refused = new Map<string, { status: number; body: string; times: number }>();
  const listings: string[] = [];
  const gets: string[] = [];
  const isDir = (path: string) => Object.keys(files).some((f) => f.startsWith(path.endsWith('/') ? path : `${path}/`));
  const entry = (path: string) => {
    const file = files[path];
    const props = file
      ? `<lp1:resourcetype/><lp1:getcontentlength>${file.length}</lp1:getcontentlength>`
      : '<lp1:resourcetype><D:collection/></lp1:resourcetype>';
    return `<D:response><D:href>${escape(encodeURI(path))}</D:href><D:propstat><D:prop>${props}<lp1:getlastmodified>Thu, 03 Dec 2026 10:00:00 GMT</lp1:getlastmodified></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`;
  };
  const children = (dir: string): string[] => {
    const names = new Set<string>();
    for (const f of Object.keys(files)) if (f.startsWith(dir)) names.add(dir + (f.slice(dir.length).split('/')[0] as string) + (f.slice(dir.length).includes('/') ? '/' : ''));
    return [...names].map((p) => (p.endsWith('/') ? p.slice(0, -1) : p));
  };
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURI(new URL(req.url ?? '/', 'https://x').pathname);
    if (req.method === 'PROPFIND') {
      listings.push(path);
      const dir = path.endsWith('/') ? path : `${path}/`;
      await held.get(dir);
      const refusal = refused.get(dir);
      if (refusal && refusal.times-- > 0) {
        res.writeHead(refusal.status, { 'Content-Type': 'text/plain' }).end(refusal.body);
        return;
      }
      if (!files[path] && !isDir(path)) {
        res.writeHead(404).end('No such file or directory');
        return;
      }
      const self = files[path] ? path : dir.slice(0, -1) || '/';
      const body = [entry(self), ...(req.headers.depth === '1' && !files[path] ? children(dir).map(entry) : [])].join('');
      res.writeHead(207, { 'Content-Type': 'text/xml; charset="utf-8"' }).end(`<?xml version="1.0" encoding="utf-8"?><D:multistatus xmlns:D="DAV:" xmlns:lp1="DAV:">${body}</D:multistatus>`);
      return;
    }
    const file = files[path];
    if ((req.method === 'GET' || req.method === 'HEAD') && file) {
      if (req.method === 'GET') gets.push(path);
      res.writeHead(200, { 'Content-Length': String(file.length) }).end(req.method === 'GET' ? file : undefined);
      return;
    }
    res.writeHead(file ? 405 : 404).end();
  };
  const { url } = await standIn(tb, (req, res) => void handler(req, res));
  return {
    url,
    listings,
    gets,
    hold(dir) {
      let release!: () => void;
      held.set(dir, new Promise<void>((r) => (release = r)));
      return () => {
        held.delete(dir);
        release();
      };
    },
    refuse(dir, status, body, times = Infinity) {
      refused.set(dir, { status, body, times });
    },
  };
}
