// OpenID provider of the Petrel test bed: oidc-provider 9 over HTTPS with device flow, dynamic
// client registration, refresh-token rotation, introspection, revocation and RFC 8693 token
// exchange, issuing WLCG-profile JWT access tokens that the test bed's XRootD servers accept.
// Plain ESM, started as a detached child by test/testbed/index.ts (startIdp).
//
//   node idp-server.mjs --key KEY.jwk --cert SERVER.pem --tls-key SERVER.key --state STATE.json
//        --ready FILE [--port N] [--pid-file FILE] [--audience AUD] [--access-ttl SECONDS]
//
// --port 0 (default) picks a free port; --ready receives {"port","url","pid"} once listening.
// Everything the provider stores (clients, grants, refresh tokens...), the run-time config and
// the statistics live in --state, rewritten atomically on each change, so a restart on the same
// port with the same key carries on where the last run stopped.
//
// Test-only endpoints (no authentication; the bed is local):
//   GET  /_test/stats         token-endpoint calls by client, grant type, requested scope, outcome
//   POST /_test/stats/reset
//   GET  /_test/config        {"accessTokenTtl":600,"deviceInterval":1}
//   POST /_test/config        JSON with the fields to change
//
// Audience (`aud`): the `resource` (RFC 8707) or `audience` (INDIGO IAM, RFC 8693) parameter,
// synonyms here and any string, on device authorization, token and token-exchange requests;
// else --audience. oidc-provider only takes `resource`, an absolute URI, so non-URI audiences
// travel inside it as `urn:petrel:audience:<aud>`.
import { createPublicKey } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { URLSearchParams } from 'node:url';
import { parseArgs } from 'node:util';
import { jwtVerify } from 'jose';
import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    key: { type: 'string' },
    cert: { type: 'string' },
    'tls-key': { type: 'string' },
    state: { type: 'string' },
    ready: { type: 'string' },
    port: { type: 'string', default: '0' },
    'pid-file': { type: 'string' },
    audience: { type: 'string', default: 'petrel-testbed' },
    'access-ttl': { type: 'string' },
  },
  strict: true,
});
for (const required of ['key', 'cert', 'tls-key', 'state', 'ready']) {
  if (!args[required]) {
    process.stderr.write(`idp-server: --${required} is required\n`);
    process.exit(2);
  }
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const TT_ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
const TT_REFRESH = 'urn:ietf:params:oauth:token-type:refresh_token';
const AUD_URN = 'urn:petrel:audience:';
const OIDC_SCOPES = ['openid', 'offline_access'];
// WLCG storage scopes and SciTokens read/write, always with a path.
const STORAGE_SCOPE = /^(storage\.(read|create|modify|stage)|read|write):\/\S*$/;

// ---------------------------------------------------------------------------------------------
// state: one JSON file, rewritten atomically after every change

function loadState(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
    return {};
  }
}

const stored = loadState(args.state);
const state = {
  config: {
    accessTokenTtl: 600,
    deviceInterval: 1,
    ...stored.config,
    ...(args['access-ttl'] ? { accessTokenTtl: positiveInt(args['access-ttl'], 'access-ttl') } : {}),
  },
  stats: stored.stats ?? {},
  models: stored.models ?? {},
};

function persist() {
  const now = Date.now();
  for (const [k, v] of Object.entries(state.models)) if (v.expiresAt && v.expiresAt <= now) delete state.models[k];
  writeFileSync(`${args.state}.tmp`, JSON.stringify(state), { mode: 0o600 });
  renameSync(`${args.state}.tmp`, args.state);
}

function positiveInt(value, what) {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new TypeError(`${what} must be a positive integer`);
  return n;
}

/** oidc-provider storage adapter over `state.models` (keys `Model:id`). */
class FileAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  entries() {
    const now = Date.now();
    return Object.entries(state.models)
      .filter(([k, v]) => k.startsWith(`${this.name}:`) && !(v.expiresAt && v.expiresAt <= now));
  }

  async upsert(id, payload, expiresIn) {
    state.models[this.key(id)] = { payload, ...(expiresIn ? { expiresAt: Date.now() + expiresIn * 1000 } : {}) };
    persist();
  }

  async find(id) {
    const entry = state.models[this.key(id)];
    if (!entry || (entry.expiresAt && entry.expiresAt <= Date.now())) return undefined;
    return entry.payload;
  }

  async findByUserCode(userCode) {
    return this.entries().find(([, v]) => v.payload.userCode === userCode)?.[1].payload;
  }

  async findByUid(uid) {
    return this.entries().find(([, v]) => v.payload.uid === uid)?.[1].payload;
  }

  async consume(id) {
    const entry = state.models[this.key(id)];
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    persist();
  }

  async destroy(id) {
    delete state.models[this.key(id)];
    persist();
  }

  async revokeByGrantId(grantId) {
    for (const [k, v] of this.entries()) if (v.payload.grantId === grantId) delete state.models[k];
    persist();
  }
}

// ---------------------------------------------------------------------------------------------
// scopes and audiences

const resourceFor = (aud) => (URL.parse(aud) ? aud : `${AUD_URN}${encodeURIComponent(aud)}`);
const audienceOf = (resource) =>
  resource.startsWith(AUD_URN) ? decodeURIComponent(resource.slice(AUD_URN.length)) : resource;
const splitScope = (scope) => (typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);
const storageScopes = (scopes) => scopes.filter((s) => STORAGE_SCOPE.test(s));

/**
 * A resource server accepts exactly the scopes it is asked for: oidc-provider 9 has no dynamic
 * scopes, it keeps only scopes the resource server lists, so list the storage scopes this
 * request can be about (its `scope`, the device code's or refresh token's).
 */
function scopesInPlay(ctx) {
  const { params, entities } = ctx.oidc;
  const all = [params?.scope, entities.DeviceCode?.scope, entities.RefreshToken?.scope].flatMap(splitScope);
  return [...new Set(storageScopes(all))];
}

function resourceServerInfo(resource, scopes) {
  return {
    audience: audienceOf(resource),
    scope: scopes.join(' '),
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'ES256' } },
  };
}

// ---------------------------------------------------------------------------------------------
// provider

const privateJwk = JSON.parse(readFileSync(args.key, 'utf8'));
const signingJwk = { ...privateJwk, kid: privateJwk.kid ?? 'k1', alg: 'ES256', use: 'sig' };
const publicKey = createPublicKey({ key: privateJwk, format: 'jwk' });
const tls = { cert: readFileSync(args.cert), key: readFileSync(args['tls-key']) };

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>`;
}

const htmlEscape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function configuration() {
  return {
    adapter: FileAdapter,
    jwks: { keys: [signingJwk] },
    // Constant: cookies of an interaction stay valid across a restart.
    cookies: { keys: ['petrel-testbed-idp-cookies'] },
    clientDefaults: {
      grant_types: [DEVICE_CODE, 'refresh_token'],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    scopes: OIDC_SCOPES,
    features: {
      devInteractions: { enabled: false },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: (ctx, form, _out, err) => {
          ctx.body = page('Device sign-in', `${err ? `<p id="error">${htmlEscape(err.name)}</p>` : ''}${form}`);
        },
        userCodeConfirmSource: (ctx, form, _client, _info, userCode) => {
          ctx.body = page('Confirm device', `<p>Code <code>${htmlEscape(userCode)}</code></p>${form}`);
        },
        successSource: (ctx) => {
          ctx.body = page('Device approved', '<p id="result">approved</p>');
        },
      },
      registration: { enabled: true },
      // Any authenticated client may introspect (as a resource server would); revoke only its own.
      introspection: { enabled: true, allowedPolicy: (_ctx, client) => client.clientAuthMethod !== 'none' },
      revocation: { enabled: true, allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => (oneOf ? oneOf[0] : resourceFor(args.audience)),
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => resourceServerInfo(resource, scopesInPlay(ctx)),
      },
    },
    formats: {
      customizers: {
        // WLCG profile (testbed.md): nbf, wlcg.ver; typ stays "at+jwt" (RFC 9068), which
        // XRootD 5.5.3 / scitokens-cpp 0.7.3 accept.
        jwt: (_ctx, _token, jwt) => {
          jwt.payload.nbf = jwt.payload.iat;
          jwt.payload['wlcg.ver'] = '1.0';
        },
      },
    },
    ttl: {
      AccessToken: () => state.config.accessTokenTtl,
      DeviceCode: 600,
      Grant: 30 * 24 * 3600,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: 14 * 24 * 3600,
      Session: 24 * 3600,
    },
    rotateRefreshToken: true,
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', `<p id="error">${htmlEscape(out.error)}: ${htmlEscape(out.error_description ?? '')}</p>`);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// RFC 8693 token exchange: subject_token = a JWT access token of this provider

async function verifySubjectToken(token) {
  try {
    const { payload } = await jwtVerify(token, publicKey, { issuer: provider.issuer, algorithms: ['ES256'] });
    if (!payload.sub) throw new Error('no sub');
    return payload;
  } catch {
    throw new errors.InvalidGrant('subject_token is invalid or expired');
  }
}

/** The scopes to grant: the requested ones, which must be covered by the subject token's. */
function exchangeScopes(requested, subjectScope, wantRefresh) {
  const held = new Set(splitScope(subjectScope));
  const asked = requested ? splitScope(requested) : [...held];
  const missing = storageScopes(asked).filter((s) => !held.has(s));
  if (missing.length) throw new errors.InvalidScope('subject_token lacks the requested scope', missing.join(' '));
  const oidc = asked.filter((s) => OIDC_SCOPES.includes(s));
  if (wantRefresh && !oidc.includes('offline_access')) oidc.push('offline_access');
  return { oidc, storage: storageScopes(asked) };
}

async function tokenExchange(ctx) {
  const { params, client } = ctx.oidc;
  if (!params.subject_token) throw new errors.InvalidRequest('missing required parameter subject_token');
  if (params.subject_token_type !== TT_ACCESS) {
    throw new errors.InvalidRequest(`subject_token_type must be ${TT_ACCESS}`);
  }
  const requested = params.requested_token_type ?? TT_ACCESS;
  if (![TT_ACCESS, TT_REFRESH].includes(requested)) {
    throw new errors.InvalidRequest('requested_token_type not supported');
  }
  const wantRefresh = requested === TT_REFRESH;
  if (wantRefresh && !client.grantTypeAllowed('refresh_token')) {
    throw new errors.InvalidRequest('refresh tokens need the refresh_token grant type');
  }
  const subject = await verifySubjectToken(params.subject_token);
  const scopes = exchangeScopes(params.scope, subject.scope, wantRefresh);
  // The request's audience (see rewriteBody), else the subject token's.
  const aud = params.resource ?? (Array.isArray(subject.aud) ? subject.aud[0] : subject.aud);
  const resource = resourceFor(aud ?? args.audience);

  // A grant of the exchanging client's own; without it introspection says "inactive".
  const grant = new provider.Grant({ accountId: subject.sub, clientId: client.clientId });
  if (scopes.oidc.length) grant.addOIDCScope(scopes.oidc.join(' '));
  grant.addResourceScope(resource, scopes.storage.join(' '));
  const grantId = await grant.save();
  ctx.oidc.entity('Grant', grant);

  const at = new provider.AccessToken({ accountId: subject.sub, client, grantId, gty: 'token_exchange' });
  at.resourceServer = new provider.ResourceServer(resource, resourceServerInfo(resource, scopes.storage));
  at.scope = scopes.storage.join(' ');
  ctx.oidc.entity('AccessToken', at);
  const accessToken = await at.save();

  let refreshToken;
  if (wantRefresh) {
    const rt = new provider.RefreshToken({
      accountId: subject.sub, client, grantId, gty: 'token_exchange', resource, rotations: 0,
      scope: [...scopes.oidc, ...scopes.storage].join(' '),
    });
    ctx.oidc.entity('RefreshToken', rt);
    refreshToken = await rt.save();
  }
  // Like INDIGO IAM: a usable access token always, the refresh token beside it.
  ctx.body = {
    access_token: accessToken,
    issued_token_type: requested,
    token_type: 'Bearer',
    expires_in: at.expiration,
    scope: at.scope,
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// interactions: a one-field login (any account id) and an auto-consent page

async function readText(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

async function readForm(req) {
  return Object.fromEntries(new URLSearchParams(await readText(req)));
}

function interactionPage(details) {
  const base = `/interaction/${details.uid}`;
  if (details.prompt.name === 'login') {
    return page('Sign in', `<form method="post" action="${base}/login">
<input type="text" name="login" value="" placeholder="account id"/><button type="submit">Sign in</button></form>`);
  }
  return page('Authorize', `<p>${htmlEscape(details.params.scope ?? '')}</p>
<form method="post" action="${base}/confirm"><button type="submit">Allow</button></form>
<form method="post" action="${base}/abort"><button type="submit">Deny</button></form>`);
}

async function consent(details) {
  const { prompt: { details: missing }, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return { grantId: await grant.save() };
}

async function interaction(ctx, uid, action) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) throw new errors.SessionNotFound('interaction mismatch');
  if (ctx.method === 'GET' && !action) {
    ctx.type = 'html';
    ctx.body = interactionPage(details);
    return;
  }
  if (ctx.method !== 'POST') ctx.throw(405);
  let result;
  if (action === 'login') {
    const { login } = await readForm(ctx.req);
    if (!login) ctx.throw(400, 'login (account id) is required');
    result = { login: { accountId: login } };
  } else if (action === 'confirm') {
    result = { consent: await consent(details) };
  } else {
    result = { error: 'access_denied', error_description: 'End-User denied the request' };
  }
  ctx.status = 303;
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result));
}

// ---------------------------------------------------------------------------------------------
// statistics and test control

function basicUser(header) {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const user = Buffer.from(m[1], 'base64').toString('utf8').split(':')[0];
  try {
    return decodeURIComponent(user);
  } catch {
    return user;
  }
}

function tokenCall(ctx) {
  const body = ctx.oidc?.body ?? {};
  return {
    client_id: ctx.oidc?.client?.clientId ?? body.client_id ?? basicUser(ctx.get('authorization')) ?? null,
    grant_type: body.grant_type ?? null,
    scope: body.scope ?? null,
    outcome: ctx.status === 200 ? 'success' : (ctx.body?.error ?? `http_${ctx.status}`),
  };
}

function countTokenCall(call) {
  const key = JSON.stringify([call.client_id, call.grant_type, call.scope, call.outcome]);
  state.stats[key] = (state.stats[key] ?? 0) + 1;
  persist();
}

function statsReport() {
  const token = Object.entries(state.stats).map(([key, count]) => {
    const [client_id, grant_type, scope, outcome] = JSON.parse(key);
    return { client_id, grant_type, scope, outcome, count };
  });
  return { token, total: token.reduce((n, e) => n + e.count, 0) };
}

async function setConfig(ctx) {
  let patch;
  try {
    patch = JSON.parse((await readText(ctx.req)) || '{}');
  } catch {
    ctx.throw(400, 'body must be JSON');
  }
  const next = { ...state.config };
  for (const [k, v] of Object.entries(patch)) {
    if (!(k in next)) ctx.throw(400, `unknown setting ${k}`);
    try {
      next[k] = positiveInt(v, k);
    } catch (e) {
      ctx.throw(400, e.message);
    }
  }
  state.config = next;
  persist();
  ctx.body = state.config;
}

async function testApi(ctx, route) {
  if (route === 'GET /_test/stats') ctx.body = statsReport();
  else if (route === 'POST /_test/stats/reset') {
    state.stats = {};
    persist();
    ctx.body = statsReport();
  } else if (route === 'GET /_test/config') ctx.body = state.config;
  else if (route === 'POST /_test/config') await setConfig(ctx);
  else ctx.throw(404);
}

// ---------------------------------------------------------------------------------------------
// HTTP

async function logAndCount(ctx, next) {
  const start = Date.now();
  try {
    await next();
  } finally {
    let note = '';
    if (ctx.method === 'POST' && ctx.path === '/token') {
      const call = tokenCall(ctx);
      countTokenCall(call);
      note = ` [${call.client_id} ${call.grant_type} ${call.outcome}]`;
    }
    // The path only: queries may carry user codes; tokens never reach the log.
    process.stdout.write(`${new Date().toISOString()} ${ctx.method} ${ctx.path} ${ctx.status} ${Date.now() - start}ms${note}\n`);
  }
}

/**
 * oidc-provider refuses to register a client whose `scope` holds anything but its static scopes,
 * although only static scopes are ever checked against it: register the static part.
 */
function registrationScope(metadata) {
  if (typeof metadata?.scope !== 'string') return metadata;
  const statics = splitScope(metadata.scope).filter((s) => OIDC_SCOPES.includes(s));
  if (statics.length) return { ...metadata, scope: statics.join(' ') };
  const { scope: _dropped, ...rest } = metadata;
  return rest;
}

/** `audience` or `resource`, any string → `resource` as oidc-provider wants it. */
function audienceParams(form) {
  const aud = form.resource ?? form.audience;
  return aud ? { ...form, resource: resourceFor(aud) } : form;
}

/**
 * Adjust a request body before oidc-provider parses it. It takes an already parsed
 * `ctx.request.body` in place of the consumed stream (and warns once that it did).
 */
async function rewriteBody(ctx) {
  if (ctx.method !== 'POST') return;
  if (ctx.path === '/reg' && ctx.is('application/json')) {
    try {
      ctx.request.body = registrationScope(JSON.parse(await readText(ctx.req)));
    } catch {
      ctx.throw(400, 'body must be JSON');
    }
  } else if (['/token', '/device/auth'].includes(ctx.path) && ctx.is('application/x-www-form-urlencoded')) {
    ctx.request.body = audienceParams(await readForm(ctx.req));
  }
}

async function routes(ctx, next) {
  const m = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
  if (m) return interaction(ctx, m[1], m[2]);
  if (ctx.path.startsWith('/_test/')) return testApi(ctx, `${ctx.method} ${ctx.path}`);
  await rewriteBody(ctx);
  await next();
  // RFC 8628 lets the provider set the polling interval; oidc-provider leaves it out.
  if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body?.device_code) {
    ctx.body = { ...ctx.body, interval: state.config.deviceInterval };
  }
}

function listen(handler, host, port) {
  return new Promise((resolve, reject) => {
    const srv = createServer(tls, handler);
    srv.once('error', reject);
    srv.listen(port, host, () => resolve(srv));
  });
}

// The issuer URL needs the port before the provider exists: bind first, attach the app after.
let app = (_req, res) => res.writeHead(503).end();
const handler = (req, res) => app(req, res);
const v4 = await listen(handler, '127.0.0.1', Number(args.port));
const port = v4.address().port;
const url = `https://localhost:${port}`;
// "localhost" may resolve to ::1: answer there too when possible.
await listen(handler, '::1', port).catch(() => undefined);

const provider = new Provider(url, configuration());
provider.registerGrantType(TOKEN_EXCHANGE, tokenExchange, new Set([
  'subject_token', 'subject_token_type', 'requested_token_type', 'scope', 'audience', 'resource',
]));
provider.use(logAndCount);
provider.use(routes);
provider.on('server_error', (_ctx, err) => process.stdout.write(`server_error: ${err.stack}\n`));
app = provider.callback();
persist();

if (args['pid-file']) writeFileSync(args['pid-file'], `${process.pid}\n`);
writeFileSync(`${args.ready}.tmp`, JSON.stringify({ port, url, pid: process.pid }));
renameSync(`${args.ready}.tmp`, args.ready);
process.stdout.write(`idp ${url} ready (pid ${process.pid}, access tokens ${state.config.accessTokenTtl} s)\n`);

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => process.exit(0));
