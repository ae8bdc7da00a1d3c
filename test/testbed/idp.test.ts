// Proves the test bed's OpenID provider (idp-server.mjs) does what Petrel's tests need: discovery,
// dynamic registration, device flow, WLCG JWT access tokens that XRootD accepts, refresh with
// rotation and down-scoping, token exchange, introspection, statistics, run-time settings and a
// restart that keeps refresh tokens. Real HTTPS calls throughout; tests run in order.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  approveDevice,
  idpStats,
  resetIdpStats,
  setIdpConfig,
  startIdp,
  stopIdp,
  writeDataFile,
  type TestbedInfo,
} from './index.js';

const tb: TestbedInfo = inject('testbed');
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TT_ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
const TT_REFRESH = 'urn:ietf:params:oauth:token-type:refresh_token';
const SCOPE = 'openid offline_access storage.read:/idp storage.create:/idp';

type Json = Record<string, unknown>;
interface Client {
  client_id: string;
  client_secret: string;
}

let dispatcher: Agent;
let meta: Record<string, string>;

beforeAll(async () => {
  dispatcher = new Agent({ connect: { ca: await readFile(tb.caFile) } });
  meta = (await call('GET', `${tb.idp.url}/.well-known/openid-configuration`)).json as Record<string, string>;
});
afterAll(async () => {
  await dispatcher.close();
});

async function call(method: string, url: string, opts: { form?: Record<string, string>; json?: unknown;
  headers?: Record<string, string> } = {}) {
  const headers = { ...opts.headers };
  let body: string | undefined;
  if (opts.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(opts.form).toString();
  } else if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  const res = await request(url, { method, headers, body, dispatcher });
  const text = await res.body.text();
  let json: Json = {};
  try {
    json = JSON.parse(text) as Json;
  } catch {
    // not JSON
  }
  return { status: res.statusCode, text, json };
}

const basic = (c: Client) =>
  `Basic ${Buffer.from(`${encodeURIComponent(c.client_id)}:${encodeURIComponent(c.client_secret)}`).toString('base64')}`;

async function register(grantTypes = [DEVICE_CODE, 'refresh_token', TOKEN_EXCHANGE],
  authMethod = 'client_secret_basic'): Promise<Client> {
  const res = await call('POST', meta.registration_endpoint!, {
    json: { client_name: 'petrel test', grant_types: grantTypes, token_endpoint_auth_method: authMethod, scope: SCOPE },
  });
  expect(res.status, res.text).toBe(201);
  return res.json as unknown as Client;
}

/** POST to an endpoint with client_secret_basic. */
function post(c: Client, endpoint: string, form: Record<string, string>) {
  return call('POST', meta[endpoint]!, { form, headers: { Authorization: basic(c) } });
}

const token = (c: Client, form: Record<string, string>) => post(c, 'token_endpoint', form);
const refresh = (c: Client, rt: string, scope?: string) =>
  token(c, { grant_type: 'refresh_token', refresh_token: rt, ...(scope ? { scope } : {}) });

async function deviceAuthorization(c: Client, scope = SCOPE, extra: Record<string, string> = {}) {
  const res = await post(c, 'device_authorization_endpoint', { scope, ...extra });
  expect(res.status, res.text).toBe(200);
  return res.json as { device_code: string; user_code: string; verification_uri: string; interval: number };
}

/** Device flow end to end: the tokens of the first poll after approval. */
async function deviceLogin(c: Client, scope = SCOPE, extra: Record<string, string> = {}, accountId?: string) {
  const da = await deviceAuthorization(c, scope, extra);
  await approveDevice(tb, da.user_code, accountId ? { accountId } : {});
  const res = await token(c, { grant_type: DEVICE_CODE, device_code: da.device_code });
  expect(res.status, res.text).toBe(200);
  return res.json as { access_token: string; refresh_token: string; scope: string; expires_in: number };
}

function decode(jwt: string): { header: Json; claims: Json } {
  const [h = '', p = ''] = jwt.split('.');
  const part = (s: string) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Json;
  return { header: part(h), claims: part(p) };
}

async function xrootdGet(path: string, accessToken: string) {
  // Header names exactly so: XRootD matches them case-sensitively.
  const res = await request(`${tb.servers.a.url}${path}`, { headers: { Authorization: `Bearer ${accessToken}` }, dispatcher });
  return { status: res.statusCode, text: await res.body.text() };
}

describe('test bed OpenID provider', () => {
  let client: Client;
  let tokens: { access_token: string; refresh_token: string; scope: string };
  const content = `hello from the idp test ${randomUUID()}\n`;

  beforeAll(async () => {
    await writeDataFile(tb.servers.a, '/idp/x.txt', Buffer.from(content));
  });

  it('publishes discovery with the endpoints Petrel uses', () => {
    expect(tb.idp.url).toBe(`https://localhost:${tb.idp.port}`);
    expect(meta).toMatchObject({
      issuer: tb.idp.url,
      token_endpoint: `${tb.idp.url}/token`,
      device_authorization_endpoint: `${tb.idp.url}/device/auth`,
      registration_endpoint: `${tb.idp.url}/reg`,
      introspection_endpoint: `${tb.idp.url}/token/introspection`,
      revocation_endpoint: `${tb.idp.url}/token/revocation`,
    });
    expect(meta.grant_types_supported).toEqual(expect.arrayContaining([DEVICE_CODE, 'refresh_token', TOKEN_EXCHANGE]));
  });

  it('registers clients dynamically (RFC 7591)', async () => {
    client = await register();
    expect(client.client_id).toEqual(expect.any(String));
    expect(client.client_secret).toEqual(expect.any(String));
    expect(client).toMatchObject({ grant_types: [DEVICE_CODE, 'refresh_token', TOKEN_EXCHANGE] });
    const post = await register([DEVICE_CODE, 'refresh_token'], 'client_secret_post');
    expect(post).toMatchObject({ token_endpoint_auth_method: 'client_secret_post' });
  });

  it('device flow: pending until approved, then access and refresh token', async () => {
    const da = await deviceAuthorization(client);
    expect(da.verification_uri).toBe(`${tb.idp.url}/device`);
    expect(da.interval).toBe(1);
    const pending = await token(client, { grant_type: DEVICE_CODE, device_code: da.device_code });
    expect(pending.json.error).toBe('authorization_pending');
    await approveDevice(tb, da.user_code, { accountId: 'alice' });
    const res = await token(client, { grant_type: DEVICE_CODE, device_code: da.device_code });
    expect(res.status, res.text).toBe(200);
    tokens = res.json as typeof tokens;
    expect(tokens).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'storage.read:/idp storage.create:/idp' });
    expect(tokens.refresh_token).toEqual(expect.any(String));
  });

  it('device flow: a replayed device code is refused and revokes its grant', async () => {
    const da = await deviceAuthorization(client);
    await approveDevice(tb, da.user_code);
    const first = await token(client, { grant_type: DEVICE_CODE, device_code: da.device_code });
    expect(first.status, first.text).toBe(200);
    const again = await token(client, { grant_type: DEVICE_CODE, device_code: da.device_code });
    expect(again.json.error).toBe('invalid_grant');
    expect((await refresh(client, first.json.refresh_token as string)).json.error).toBe('invalid_grant');
  });

  it('device flow: a denied request ends with access_denied', async () => {
    const da = await deviceAuthorization(client);
    await approveDevice(tb, da.user_code, { deny: true });
    const res = await token(client, { grant_type: DEVICE_CODE, device_code: da.device_code });
    expect(res.json.error).toBe('access_denied');
  });

  it('access tokens are WLCG JWTs', () => {
    const { header, claims } = decode(tokens.access_token);
    expect(header).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' });
    expect(claims).toMatchObject({
      iss: tb.idp.url,
      sub: 'alice',
      aud: tb.audience,
      scope: 'storage.read:/idp storage.create:/idp',
      'wlcg.ver': '1.0',
      client_id: client.client_id,
    });
    expect(claims.jti).toEqual(expect.any(String));
    expect(claims.nbf).toBe(claims.iat);
    expect(Number(claims.exp) - Number(claims.iat)).toBe(600);
  });

  it('XRootD accepts them: 200 with storage.read, 403 without', async () => {
    const ok = await xrootdGet('/idp/x.txt', tokens.access_token);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.text).toBe(content);
    const createOnly = await refresh(client, tokens.refresh_token, 'storage.create:/idp');
    expect(createOnly.status, createOnly.text).toBe(200);
    tokens = createOnly.json as typeof tokens;
    expect(tokens.scope).toBe('storage.create:/idp');
    expect((await xrootdGet('/idp/x.txt', tokens.access_token)).status).toBe(403);
  });

  it('`resource` or `audience` (any string) sets aud', async () => {
    const t = await deviceLogin(client, 'storage.read:/idp', { resource: tb.servers.a.url });
    expect(decode(t.access_token).claims.aud).toBe(tb.servers.a.url);
    expect((await xrootdGet('/idp/x.txt', t.access_token)).status).toBe(200);
    const any = await deviceLogin(client, 'storage.read:/idp', { audience: 'https://wlcg.cern.ch/jwt/v1/any' });
    expect(decode(any.access_token).claims.aud).toBe('https://wlcg.cern.ch/jwt/v1/any');
    // Both at once, as INDIGO-IAM-minded clients send them; a plain string is fine.
    const both = { audience: tb.audience, resource: tb.audience };
    const plain = await deviceLogin(client, 'offline_access storage.read:/idp', both);
    expect(decode(plain.access_token).claims.aud).toBe(tb.audience);
    const refreshed = await token(client, { grant_type: 'refresh_token', refresh_token: plain.refresh_token, ...both });
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(decode(refreshed.json.access_token as string).claims.aud).toBe(tb.audience);
    const other = await token(client, {
      grant_type: 'refresh_token', refresh_token: refreshed.json.refresh_token as string, audience: tb.servers.b.url,
    });
    expect(other.json.error).toBe('invalid_target');
  });

  it('refresh rotates: the old refresh token is refused (and reuse revokes the grant)', async () => {
    const t = await deviceLogin(client);
    const first = await refresh(client, t.refresh_token);
    expect(first.status, first.text).toBe(200);
    const rotated = first.json.refresh_token as string;
    expect(rotated).not.toBe(t.refresh_token);
    expect(decode(first.json.access_token as string).claims.scope).toBe('storage.read:/idp storage.create:/idp');
    const second = await refresh(client, rotated);
    expect(second.status, second.text).toBe(200);
    const old = await refresh(client, t.refresh_token);
    expect(old.status).toBe(400);
    expect(old.json.error).toBe('invalid_grant');
    // oidc-provider treats reuse as theft: the whole grant, with the newest token, is gone.
    expect((await refresh(client, second.json.refresh_token as string)).json.error).toBe('invalid_grant');
  });

  it('refresh down-scopes; a scope outside the grant is invalid_scope', async () => {
    const t = await deviceLogin(client);
    const narrow = await refresh(client, t.refresh_token, 'storage.read:/idp');
    expect(narrow.status, narrow.text).toBe(200);
    expect(narrow.json.scope).toBe('storage.read:/idp');
    expect(decode(narrow.json.access_token as string).claims.scope).toBe('storage.read:/idp');
    const wider = await refresh(client, narrow.json.refresh_token as string, 'storage.read:/other');
    expect(wider.status).toBe(400);
    expect(wider.json.error).toBe('invalid_scope');
    // The rotated token still carries the full grant.
    const full = await refresh(client, narrow.json.refresh_token as string);
    expect(full.json.scope).toBe('storage.read:/idp storage.create:/idp');
  });

  it('token exchange (RFC 8693): access token → access token, or refresh token', async () => {
    const user = await deviceLogin(client, SCOPE, {}, 'bob');
    const fts = await register([TOKEN_EXCHANGE, 'refresh_token']);
    const exchange = (form: Record<string, string>) => token(fts, {
      grant_type: TOKEN_EXCHANGE, subject_token: user.access_token, subject_token_type: TT_ACCESS, ...form,
    });

    const at = await exchange({ scope: 'storage.read:/idp', audience: tb.servers.a.url });
    expect(at.status, at.text).toBe(200);
    expect(at.json).toMatchObject({ issued_token_type: TT_ACCESS, token_type: 'Bearer', scope: 'storage.read:/idp' });
    expect(at.json.refresh_token).toBeUndefined();
    expect(decode(at.json.access_token as string).claims).toMatchObject({
      sub: 'bob', aud: tb.servers.a.url, client_id: fts.client_id, scope: 'storage.read:/idp',
    });
    expect((await xrootdGet('/idp/x.txt', at.json.access_token as string)).status).toBe(200);

    const rt = await exchange({ requested_token_type: TT_REFRESH });
    expect(rt.status, rt.text).toBe(200);
    expect(rt.json).toMatchObject({ issued_token_type: TT_REFRESH, scope: 'storage.read:/idp storage.create:/idp' });
    const intro = await post(fts, 'introspection_endpoint', { token: rt.json.refresh_token as string });
    expect(intro.json).toMatchObject({ active: true, client_id: fts.client_id, sub: 'bob' });
    const refreshed = await refresh(fts, rt.json.refresh_token as string, 'storage.read:/idp');
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(decode(refreshed.json.access_token as string).claims).toMatchObject({ sub: 'bob', aud: tb.audience });

    expect((await exchange({ scope: 'storage.modify:/idp' })).json.error).toBe('invalid_scope');
    const forged = await token(fts, { grant_type: TOKEN_EXCHANGE, subject_token: 'x.y.z', subject_token_type: TT_ACCESS });
    expect(forged.json.error).toBe('invalid_grant');
  });

  it('introspection and revocation of refresh tokens', async () => {
    const t = await deviceLogin(client);
    const active = await post(client, 'introspection_endpoint', { token: t.refresh_token });
    expect(active.json).toMatchObject({ active: true, client_id: client.client_id, sub: 'petrel-user' });
    // oidc-provider refuses to introspect structured (JWT) access tokens.
    const jwt = await post(client, 'introspection_endpoint', { token: t.access_token });
    expect(jwt.json.error).toBe('unsupported_token_type');
    expect((await post(client, 'revocation_endpoint', { token: t.refresh_token })).status).toBe(200);
    expect((await post(client, 'introspection_endpoint', { token: t.refresh_token })).json).toEqual({ active: false });
  });

  it('counts token-endpoint calls', async () => {
    await resetIdpStats(tb);
    const other = await register();
    const t = await deviceLogin(other);
    await refresh(other, t.refresh_token, 'storage.read:/idp');
    await refresh(other, t.refresh_token);
    const stats = await idpStats(tb);
    expect(stats.total).toBe(3);
    expect(stats.token).toEqual(expect.arrayContaining([
      { client_id: other.client_id, grant_type: DEVICE_CODE, scope: null, outcome: 'success', count: 1 },
      { client_id: other.client_id, grant_type: 'refresh_token', scope: 'storage.read:/idp', outcome: 'success', count: 1 },
      { client_id: other.client_id, grant_type: 'refresh_token', scope: null, outcome: 'invalid_grant', count: 1 },
    ]));
    await resetIdpStats(tb);
    expect(await idpStats(tb)).toEqual({ token: [], total: 0 });
  });

  it('access-token lifetime can be changed at run time', async () => {
    const t = await deviceLogin(client);
    try {
      expect(await setIdpConfig(tb, { accessTokenTtl: 60 })).toMatchObject({ accessTokenTtl: 60 });
      const short = await refresh(client, t.refresh_token);
      expect(short.json.expires_in).toBe(60);
      const { claims } = decode(short.json.access_token as string);
      expect(Number(claims.exp) - Number(claims.iat)).toBe(60);
    } finally {
      await setIdpConfig(tb, { accessTokenTtl: 600 });
    }
    await expect(setIdpConfig(tb, { accessTokenTtl: 0 })).rejects.toThrow(/400/);
  });

  it('survives a restart: refresh tokens issued before still work', async () => {
    const t = await deviceLogin(client);
    await stopIdp(tb);
    await expect(refresh(client, t.refresh_token)).rejects.toThrow();
    await startIdp(tb);
    const after = await refresh(client, t.refresh_token);
    expect(after.status, after.text).toBe(200);
    expect((await xrootdGet('/idp/x.txt', after.json.access_token as string)).status).toBe(200);
  });
});
