// Test-side helpers for the test bed's OpenID provider (idp-server.mjs): approve a device flow by
// driving the provider's own pages like a browser would, and read or change its test-only
// statistics and settings. Re-exported from ./index.js.
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'undici';
import type { TestbedInfo } from './index.js';

type IdpBed = Pick<TestbedInfo, 'idp' | 'caFile'>;

export interface IdpStatsEntry {
  /** null when the call carried no client identification. */
  client_id: string | null;
  grant_type: string | null;
  /** The `scope` parameter as sent, null when absent. */
  scope: string | null;
  /** `success`, or the OAuth error code (`invalid_grant`, `authorization_pending`, ...). */
  outcome: string;
  count: number;
}

export interface IdpStats {
  /** Token-endpoint calls since the last reset, grouped by the fields above. */
  token: IdpStatsEntry[];
  total: number;
}

export interface IdpConfig {
  /** Lifetime of new access tokens, seconds. */
  accessTokenTtl: number;
  /** `interval` announced by the device authorization endpoint, seconds. */
  deviceInterval: number;
}

export interface ApproveOptions {
  /** Refuse instead (the provider's "abort" on the confirmation page): polling then gets access_denied. */
  deny?: boolean;
  /** The user that signs in (the token's `sub`); default `petrel-user`. */
  accountId?: string;
}

async function withAgent<T>(tb: IdpBed, fn: (dispatcher: Agent) => Promise<T>): Promise<T> {
  const dispatcher = new Agent({ connect: { ca: await readFile(tb.caFile) } });
  try {
    return await fn(dispatcher);
  } finally {
    await dispatcher.close();
  }
}

async function controlCall<T>(tb: IdpBed, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  return withAgent(tb, async (dispatcher) => {
    const res = await request(`${tb.idp.url}${path}`, {
      method,
      dispatcher,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`idp ${method} ${path}: ${res.statusCode} ${text}`);
    return JSON.parse(text) as T;
  });
}

/** Token-endpoint statistics of the IdP. */
export function idpStats(tb: IdpBed): Promise<IdpStats> {
  return controlCall<IdpStats>(tb, 'GET', '/_test/stats');
}

export async function resetIdpStats(tb: IdpBed): Promise<void> {
  await controlCall(tb, 'POST', '/_test/stats/reset');
}

/** Change IdP settings at run time (they persist across restarts); returns all settings. */
export function setIdpConfig(tb: IdpBed, patch: Partial<IdpConfig>): Promise<IdpConfig> {
  return controlCall<IdpConfig>(tb, 'POST', '/_test/config', patch);
}

// ---------------------------------------------------------------------------------------------
// a minimal browser: cookie jar, redirects, HTML forms

interface Cookie {
  name: string;
  value: string;
  path: string;
}

class CookieJar {
  private cookies = new Map<string, Cookie>();

  store(setCookie: string | string[] | undefined): void {
    for (const line of typeof setCookie === 'string' ? [setCookie] : (setCookie ?? [])) {
      const [pair = '', ...attrs] = line.split(';').map((p) => p.trim());
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const cookie = { name: pair.slice(0, eq), value: pair.slice(eq + 1), path: '/' };
      let expired = false;
      for (const attr of attrs) {
        const [k = '', v = ''] = attr.split('=');
        if (/^path$/i.test(k)) cookie.path = v || '/';
        if (/^max-age$/i.test(k) && Number(v) <= 0) expired = true;
        if (/^expires$/i.test(k) && Date.parse(v) <= Date.now()) expired = true;
      }
      const key = `${cookie.name};${cookie.path}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, cookie);
    }
  }

  header(url: string): string {
    const path = new URL(url).pathname;
    const matches = (p: string) => path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`);
    return [...this.cookies.values()].filter((c) => matches(c.path)).map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

interface Page {
  url: string;
  status: number;
  location?: string;
  html: string;
}

interface Form {
  action: string;
  fields: Record<string, string>;
}

const decodeHtml = (s: string) =>
  s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)))
    .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\b${name}="([^"]*)"`).exec(tag);
  return m?.[1] === undefined ? undefined : decodeHtml(m[1]);
}

/** The first form of the page with its named inputs (as the page fills them). */
function firstForm(html: string): Form | undefined {
  const m = /<form\b([^>]*)>([\s\S]*?)<\/form>/.exec(html);
  if (!m) return undefined;
  const fields: Record<string, string> = {};
  for (const [input] of (m[2] ?? '').matchAll(/<input\b[^>]*>/g)) {
    const name = attr(input, 'name');
    if (name) fields[name] = attr(input, 'value') ?? '';
  }
  return { action: attr(m[1] ?? '', 'action') ?? '', fields };
}

class Browser {
  private jar = new CookieJar();

  constructor(private dispatcher: Agent) {}

  async open(url: string, form?: Record<string, string>): Promise<Page> {
    const headers: Record<string, string> = { cookie: this.jar.header(url) };
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await request(url, {
      method: form ? 'POST' : 'GET',
      headers,
      body: form ? new URLSearchParams(form).toString() : undefined,
      dispatcher: this.dispatcher,
    });
    this.jar.store(res.headers['set-cookie']);
    const location = res.headers.location;
    return {
      url,
      status: res.statusCode,
      location: typeof location === 'string' ? new URL(location, url).href : undefined,
      html: await res.body.text(),
    };
  }
}

/**
 * Approve (or deny) the device authorization with `userCode` as a user would: the IdP's code
 * entry page, its confirmation page, the sign-in page (any account id, no password) and the
 * consent page. Resolves once the IdP says so; the client's next poll then gets its tokens
 * (or access_denied).
 */
export async function approveDevice(tb: IdpBed, userCode: string, opts: ApproveOptions = {}): Promise<void> {
  const accountId = opts.accountId ?? 'petrel-user';
  await withAgent(tb, async (dispatcher) => {
    const browser = new Browser(dispatcher);
    let page = await browser.open(`${tb.idp.url}/device`);
    for (let step = 0; step < 20; step++) {
      if (page.location) {
        page = await browser.open(page.location);
        continue;
      }
      if (page.html.includes('id="result">approved')) {
        if (opts.deny) throw new Error('approveDevice: the IdP approved although deny was asked');
        return;
      }
      const error = /id="error">([^<]*)/.exec(page.html)?.[1];
      if (error === 'AbortedError' && opts.deny) return;
      if (error) throw new Error(`approveDevice(${userCode}): the IdP says ${decodeHtml(error)}`);
      const form = firstForm(page.html);
      if (!form) throw new Error(`approveDevice: unexpected page ${page.status} at ${page.url}: ${page.html.slice(0, 300)}`);
      const fields = { ...form.fields };
      if ('user_code' in fields && !fields.user_code) fields.user_code = userCode;
      if ('login' in fields) fields.login = accountId;
      if ('confirm' in fields && opts.deny) fields.abort = 'yes';
      page = await browser.open(new URL(form.action, page.url).href, fields);
    }
    throw new Error('approveDevice: too many steps');
  });
}
