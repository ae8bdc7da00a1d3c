import type * as OidcLib from 'openid-client';
import { PetrelError } from '../errors.js';
import { redactText } from '../log.js';
import { trustedCAs } from '../tls.js';
import type { ClientRegistration } from '../wallet/index.js';

/** What a token endpoint gave: the access token, when it expires, maybe a (rotated) refresh token. */
export interface IssuedTokens {
  accessToken: string;
  /** Epoch ms; issuers that omit `expires_in` are assumed to give 20 minutes (the WLCG default). */
  expiresAt: number;
  refreshToken?: string;
  /** The granted scopes when the issuer says (space-separated). */
  scope?: string;
}

export interface TokenAsk {
  scopes: string[];
  audience?: string | undefined;
}

export interface DeviceLogin {
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  expiresInS: number;
  /** Polls the token endpoint as RFC 8628 says (interval, slow_down) until the user decides. */
  complete(signal?: AbortSignal): Promise<IssuedTokens>;
}

const DEFAULT_LIFETIME_MS = 20 * 60_000;
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const REFRESH_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:refresh_token';

function askParams(ask: TokenAsk): Record<string, string> {
  // WLCG issuers (INDIGO IAM) read `audience`; RFC 8707 issuers read `resource`.
  return {
    scope: ask.scopes.join(' '),
    ...(ask.audience ? { audience: ask.audience, resource: ask.audience } : {}),
  };
}

function issued(res: OidcLib.TokenEndpointResponse, now: number): IssuedTokens {
  return {
    accessToken: res.access_token,
    expiresAt: now + (typeof res.expires_in === 'number' ? res.expires_in * 1000 : DEFAULT_LIFETIME_MS),
    ...(res.refresh_token ? { refreshToken: res.refresh_token } : {}),
    ...(typeof res.scope === 'string' ? { scope: res.scope } : {}),
  };
}

/**
 * Issuers' descriptions may quote what they were sent ("Invalid refresh token: <token>"): keep
 * the words, drop anything long enough to be a token.
 */
function scrubDescription(text: string): string {
  return redactText(text).replace(/[A-Za-z0-9._~+/=-]{20,}/g, '[redacted]').slice(0, 300);
}

/**
 * Turns what openid-client throws into a PetrelError. The messages carry the issuer's error
 * code and description, never a token: openid-client's own messages name no secrets.
 */
export function idpError(oidc: typeof OidcLib, e: unknown, issuer: string, what: string): PetrelError {
  if (e instanceof PetrelError) return e;
  if (e instanceof oidc.ResponseBodyError) {
    const detail = `${e.error}${e.error_description ? `: ${scrubDescription(e.error_description)}` : ''}`;
    if (e.error === 'invalid_grant' || e.error === 'invalid_token') {
      return new PetrelError('CREDENTIAL_DEAD', `${issuer} no longer accepts the credential (${detail})`, { hint: 'log in again with `petrel warm <url>`' });
    }
    if (e.status >= 500 || e.error === 'temporarily_unavailable') {
      return new PetrelError('IDP_UNAVAILABLE', `${issuer} failed to answer ${what} (${e.status} ${detail})`, { transient: true });
    }
    return new PetrelError('IDP_REFUSED', `${issuer} refused ${what} (${detail})`, { hint: 'check the issuer settings in the config file, or warm again' });
  }
  if (e instanceof oidc.ClientError && e.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM') {
    const status = (e.cause as Response | undefined)?.status;
    return new PetrelError('IDP_UNAVAILABLE', `${issuer} answered ${what} with ${status ?? 'something that is not OAuth'}`, { transient: true, cause: e });
  }
  const message = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
  return new PetrelError('IDP_UNAVAILABLE', `cannot reach ${issuer} for ${what} (${message}${cause})`, { transient: true, cause: e });
}

export interface OidcOptions {
  caFile?: string | undefined;
  /** Per request, in seconds (openid-client's unit). */
  timeoutS?: number;
  clientName?: string;
}

/** openid-client, with a fetch that trusts the system CAs plus PETREL_CA_FILE. */
async function load(opts: OidcOptions) {
  const [oidc, { Agent, fetch }] = await Promise.all([import('openid-client'), import('undici')]);
  const dispatcher = new Agent({ connect: { ca: trustedCAs(opts.caFile) } });
  const fetchImpl: OidcLib.CustomFetch = (url, init) => fetch(url, { ...(init as Parameters<typeof fetch>[1]), dispatcher }) as unknown as Promise<Response>;
  return { oidc, dispatcher, fetchImpl, requestOptions: { [oidc.customFetch]: fetchImpl, timeout: opts.timeoutS ?? 30 } };
}

type OidcSetup = Awaited<ReturnType<typeof load>>;

/**
 * The OAuth2 flows Petrel needs (protocols.md §5), over openid-client, trusting the system CAs
 * plus PETREL_CA_FILE. Issuer metadata is discovered once per issuer and client.
 */
export function createOidc(opts: OidcOptions = {}) {
  // openid-client, undici and the issuers' connection pool are set up at the first call: an agent
  // that only moves data with explicit tokens never loads them (18 MB of memory less).
  let ready: ReturnType<typeof load> | undefined;
  const setup = () => (ready ??= load(opts));
  const configs = new Map<string, Promise<OidcLib.Configuration>>();

  async function configFor(client: ClientRegistration): Promise<OidcLib.Configuration> {
    const { oidc, fetchImpl, requestOptions } = await setup();
    const key = `${client.issuer}\n${client.clientId}`;
    let config = configs.get(key);
    if (!config) {
      const auth = client.clientSecret ? oidc.ClientSecretBasic(client.clientSecret) : oidc.None();
      config = oidc.discovery(new URL(client.issuer), client.clientId, undefined, auth, requestOptions).then((c) => {
        c[oidc.customFetch] = fetchImpl;
        return c;
      });
      // A failed discovery is not remembered: the issuer may be back next time.
      config.catch(() => configs.delete(key));
      configs.set(key, config);
    }
    return config;
  }

  async function attempt<T>(issuer: string, what: string, fn: (lib: OidcSetup) => Promise<T>): Promise<T> {
    const lib = await setup();
    try {
      return await fn(lib);
    } catch (e) {
      throw idpError(lib.oidc, e, issuer, what);
    }
  }

  return {
    /** RFC 7591 dynamic registration of a client that may use the grants Petrel needs. */
    register(issuer: string, scopes: string[]): Promise<ClientRegistration> {
      return attempt(issuer, 'client registration', async ({ oidc, requestOptions }) => {
        const config = await oidc.dynamicClientRegistration(new URL(issuer), {
          client_name: opts.clientName ?? 'petrel',
          grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token', TOKEN_EXCHANGE],
          response_types: [],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: scopes.join(' '),
        }, undefined, requestOptions);
        const meta = config.clientMetadata();
        return {
          issuer,
          clientId: meta.client_id,
          ...(typeof meta.client_secret === 'string' ? { clientSecret: meta.client_secret } : {}),
        };
      });
    },

    /** RFC 6749 §6. The caller must store a rotated refresh token before using the access token. */
    refresh(client: ClientRegistration, refreshToken: string, ask: TokenAsk): Promise<IssuedTokens> {
      return attempt(client.issuer, 'a token refresh', async ({ oidc }) => {
        const now = Date.now();
        return issued(await oidc.refreshTokenGrant(await configFor(client), refreshToken, askParams(ask)), now);
      });
    },

    /** RFC 8693: trade an access token for one with `ask`'s scopes, and a refresh token when `wantRefresh`. */
    exchange(client: ClientRegistration, subjectToken: string, ask: TokenAsk & { wantRefresh?: boolean }): Promise<IssuedTokens> {
      return attempt(client.issuer, 'a token exchange', async ({ oidc }) => {
        const now = Date.now();
        const res = await oidc.genericGrantRequest(await configFor(client), TOKEN_EXCHANGE, {
          subject_token: subjectToken,
          subject_token_type: ACCESS_TOKEN_TYPE,
          ...(ask.wantRefresh ? { requested_token_type: REFRESH_TOKEN_TYPE } : {}),
          ...askParams(ask),
        });
        return issued(res, now);
      });
    },

    /** RFC 8628: start a device login; the caller shows the code, then awaits `complete()`. */
    async deviceLogin(client: ClientRegistration, ask: TokenAsk): Promise<DeviceLogin> {
      const config = await attempt(client.issuer, 'discovery', () => configFor(client));
      const params = askParams(ask);
      const started = await attempt(client.issuer, 'a device login', ({ oidc }) => oidc.initiateDeviceAuthorization(config, params));
      return {
        userCode: started.user_code,
        verificationUri: started.verification_uri,
        ...(started.verification_uri_complete ? { verificationUriComplete: started.verification_uri_complete } : {}),
        expiresInS: started.expires_in,
        complete: (signal) =>
          attempt(client.issuer, 'the device login', async ({ oidc }) => {
            const now = Date.now();
            return issued(await oidc.pollDeviceAuthorizationGrant(config, started, params.resource ? { resource: params.resource } : undefined, signal ? { signal } : undefined), now);
          }),
      };
    },

    async close(): Promise<void> {
      // Nothing to close when no call was made (or openid-client failed to load).
      const lib = await ready?.catch(() => undefined);
      await lib?.dispatcher.close();
    },
  };
}

export type Oidc = ReturnType<typeof createOidc>;
