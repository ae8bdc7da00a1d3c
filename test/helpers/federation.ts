// A stand-in Pelican federation: no Pelican binary can be installed here (pelican.md). It is a
// discovery document and a director, answering as Pelican's director does (director/director.go):
// a 307 whose Location is the best server, `Link: <…>; rel="duplicate"; pri=N; depth=D` for the
// others, and the X-Pelican-Namespace, X-Pelican-Authorization and X-Pelican-Token-Generation
// headers, from a small namespace table. GET and HEAD go to caches; PUT, DELETE, COPY, PROPFIND
// and `?directread` to origins; 404 for a path no namespace holds, 405 for a write where no origin
// takes writes. The data is served by the test bed's real XRootD servers, as origins and caches.
// Not covered: the director's per-object cache choice (by GeoIP and load: this one answers the
// table's order), its /api/v1.0/director/* routes, namespace registration, the broker, and
// Pelican's cache itself (XRootD's proxy cache, XCache, stands in for one: Pelican's cache is an
// XCache too, but with token-aware authorization it has not here).
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestbedInfo } from '../testbed/index.js';

export interface StandInNamespace {
  prefix: string;
  /** `https://host:port` of each cache, best first. */
  caches: string[];
  /** `https://host:port` of its origin. */
  origin: string;
  requireToken: boolean;
  writable?: boolean;
  /** X-Pelican-Authorization issuers; the first also in X-Pelican-Token-Generation, unless tokenIssuer. */
  issuers?: string[];
  tokenIssuer?: string;
  maxScopeDepth?: number;
  basePath?: string;
  collectionsUrl?: string;
  /** Answer 401 with WWW-Authenticate, as the director does for a token that has (nearly) expired. */
  tokenExpired?: boolean;
}

export interface DirectorQuery {
  method: string;
  path: string;
  directRead: boolean;
  jobId: string | undefined;
}

export interface StandInFederation {
  /** `https://localhost:PORT`: the discovery host (pelican://localhost:PORT/…). */
  url: string;
  host: string;
  queries: DirectorQuery[];
  discoveries: number;
  /** The next `n` director queries answer 429 (a director that has just restarted). */
  throttle(n: number): void;
  close(): Promise<void>;
}

const ORIGIN_VERBS = new Set(['PUT', 'DELETE', 'COPY', 'PROPFIND']);

export async function standInFederation(tb: Pick<TestbedInfo, 'tls'>, namespaces: StandInNamespace[]): Promise<StandInFederation> {
  let throttled = 0;
  const fed = { queries: [] as DirectorQuery[], discoveries: 0 };
  let base = '';

  function director(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', base);
    const method = req.method ?? 'GET';
    const directRead = url.searchParams.has('directread');
    const jobId = req.headers['x-pelican-jobid'] as string | undefined;
    fed.queries.push({ method, path: url.pathname, directRead, jobId });
    if (throttled > 0) {
      throttled--;
      res.writeHead(429, { 'Retry-After': '1', 'Content-Type': 'text/plain' }).end('director is starting up');
      return;
    }
    const path = decodeURIComponent(url.pathname);
    const ns = namespaces.filter((n) => path === n.prefix || path.startsWith(`${n.prefix}/`)).sort((a, b) => b.prefix.length - a.prefix.length)[0];
    if (!ns) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`No namespace found for path ${path}`);
      return;
    }
    if (ns.tokenExpired) {
      res.writeHead(401, { 'WWW-Authenticate': 'Bearer error="invalid_token", error_description="token expired"', 'Content-Type': 'text/plain' }).end('token expired');
      return;
    }
    const toOrigin = ORIGIN_VERBS.has(method) || directRead;
    if (method === 'PUT' && !ns.writable) {
      res.writeHead(405, { 'Content-Type': 'text/plain' }).end('No origins on specified endpoint allow writes');
      return;
    }
    const servers = toOrigin ? [ns.origin] : ns.caches;
    const depth = path.split('/').filter(Boolean).length - ns.prefix.split('/').filter(Boolean).length;
    const headers: Record<string, string | string[]> = {
      Location: `${servers[0]}${url.pathname}`,
      Link: servers.map((s, i) => `<${s}${url.pathname}>; rel="duplicate"; pri=${i + 1}; depth=${depth}`).join(', '),
      'X-Pelican-Namespace': [`namespace=${ns.prefix}`, `require-token=${ns.requireToken}`, ...(ns.collectionsUrl ? [`collections-url=${ns.collectionsUrl}`] : [])].join(', '),
    };
    if (ns.issuers?.length) {
      headers['X-Pelican-Authorization'] = ns.issuers.map((i) => `issuer=${i}`).join(', ');
      headers['X-Pelican-Token-Generation'] = [`issuer=${ns.tokenIssuer ?? ns.issuers[0]}`, ...(ns.maxScopeDepth ? [`max-scope-depth=${ns.maxScopeDepth}`] : []), 'strategy=OAuth2', `base-path=${ns.basePath ?? ns.prefix}`].join(', ');
    }
    if (jobId) headers['X-Pelican-JobId'] = jobId;
    res.writeHead(307, headers).end();
  }

  const server: Server = createServer({ cert: readFileSync(tb.tls.certFile), key: readFileSync(tb.tls.keyFile) }, (req, res) => {
    req.resume();
    if (req.url === '/.well-known/pelican-configuration') {
      fed.discoveries++;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ director_endpoint: `${base}/director`, namespace_registration_endpoint: `${base}/registry`, jwks_uri: `${base}/.well-known/issuer.jwks` }));
      return;
    }
    if (req.url?.startsWith('/director/')) {
      req.url = req.url.slice('/director'.length);
      director(req, res);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, 'localhost', r));
  const port = (server.address() as AddressInfo).port;
  base = `https://localhost:${port}`;
  return {
    url: base,
    host: `localhost:${port}`,
    get queries() {
      return fed.queries;
    },
    get discoveries() {
      return fed.discoveries;
    },
    throttle(n) {
      throttled = n;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
