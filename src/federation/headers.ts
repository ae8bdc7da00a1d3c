/**
 * The headers of a Pelican director's answer (pelican.md §3), parsed. The director writes them as
 * comma-separated `key=value` lists; Node joins repeated headers with ", ".
 */

export interface DuplicateLink {
  url: URL;
  /** 1 is the best. */
  pri: number;
  /** Path components below the namespace prefix. */
  depth?: number | undefined;
}

export interface NamespaceHeader {
  prefix: string;
  requireToken: boolean;
  /** Where PROPFIND and stat go for this namespace (an origin). */
  collectionsUrl?: URL | undefined;
}

export interface TokenGeneration {
  issuer: string;
  maxScopeDepth?: number | undefined;
  /** The storage path that scopes are relative to; the namespace prefix when absent. */
  basePath?: string | undefined;
  strategy?: string | undefined;
}

type HeaderValue = string | string[] | undefined;

const joined = (v: HeaderValue): string => (Array.isArray(v) ? v.join(', ') : (v ?? ''));

/** `a=1, b=2, a=3` → [[a,1],[b,2],[a,3]] (values may hold `=`, never `, `). */
export function keyValues(v: HeaderValue): [string, string][] {
  const out: [string, string][] = [];
  for (const part of joined(v).split(/,\s*/)) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    out.push([part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim().replace(/^"(.*)"$/, '$1')]);
  }
  return out;
}

const first = (pairs: [string, string][], key: string): string | undefined => pairs.find(([k]) => k === key)?.[1];

function urlOrUndefined(text: string | undefined): URL | undefined {
  if (!text) return undefined;
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

const intOrUndefined = (text: string | undefined): number | undefined => {
  const n = text === undefined ? NaN : Number(text);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
};

/** `Link: <url>; rel="duplicate"; pri=1; depth=2, <url2>; …`: the duplicates, best first. */
export function parseLinks(v: HeaderValue): DuplicateLink[] {
  const links: DuplicateLink[] = [];
  for (const m of joined(v).matchAll(/<([^>]*)>([^<]*)/g)) {
    const params = new Map<string, string>();
    for (const p of (m[2] ?? '').split(';')) {
      const i = p.indexOf('=');
      if (i > 0) params.set(p.slice(0, i).trim().toLowerCase(), p.slice(i + 1).trim().replace(/^"(.*)"$/, '$1').replace(/,\s*$/, ''));
    }
    const url = urlOrUndefined(m[1]);
    if (!url || params.get('rel') !== 'duplicate') continue;
    links.push({ url, pri: intOrUndefined(params.get('pri')) ?? Number.MAX_SAFE_INTEGER, depth: intOrUndefined(params.get('depth')) });
  }
  return links.sort((a, b) => a.pri - b.pri);
}

export function parseNamespace(v: HeaderValue): NamespaceHeader | undefined {
  const pairs = keyValues(v);
  const prefix = first(pairs, 'namespace');
  if (!prefix?.startsWith('/')) return undefined;
  return { prefix: prefix.replace(/(.)\/+$/, '$1'), requireToken: first(pairs, 'require-token') === 'true', collectionsUrl: urlOrUndefined(first(pairs, 'collections-url')) };
}

/** `X-Pelican-Authorization: issuer=a, issuer=b`: the issuers whose tokens the namespace takes. */
export function parseIssuers(v: HeaderValue): string[] {
  return keyValues(v)
    .filter(([k, value]) => k === 'issuer' && urlOrUndefined(value))
    .map(([, value]) => value);
}

export function parseTokenGeneration(v: HeaderValue): TokenGeneration | undefined {
  const pairs = keyValues(v);
  const issuer = first(pairs, 'issuer');
  if (!issuer || !urlOrUndefined(issuer)) return undefined;
  const basePath = first(pairs, 'base-path');
  return { issuer, maxScopeDepth: intOrUndefined(first(pairs, 'max-scope-depth')), basePath: basePath?.startsWith('/') ? basePath : undefined, strategy: first(pairs, 'strategy') };
}
