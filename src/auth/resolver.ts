import { KIND_SIDES, type JobKind, type Side } from '../domain.js';
import { PetrelError, WAITING_CODES } from '../errors.js';
import { isFederated, type TransferTask } from '../transfer/index.js';
import type { AcquiredToken, TokenBroker } from './broker.js';
import { discoverBearerToken } from './bearer-discovery.js';
import { operationVerb, type Operation } from './scopes.js';

/**
 * Where a request's bearer token comes from, decided in one place: an ordered list of sources,
 * the first that has a token wins. The agent and the CLI configure the list differently:
 *
 * | who | sources, in order |
 * |---|---|
 * | agent, a transfer | the job's explicit token (unsealed) → the wallet broker |
 * | CLI, a foreground transfer | --token or bearer-token discovery → the agent over the socket |
 * | CLI, `petrel token` | the agent over the socket → the wallet unlocked here → bearer-token discovery |
 */

export interface TokenRequest {
  url: URL;
  operation: Operation;
}

export interface ResolvedToken {
  token: string;
  /** Which source gave it, for `petrel token --json` and the logs. */
  source: string;
  expiresAt?: number | undefined;
  credentialId?: string | undefined;
}

/** One place a token may come from: undefined when it has none for the request (look further); throws when the user must act. */
export interface TokenSource {
  name: string;
  get(req: TokenRequest): Promise<ResolvedToken | undefined>;
}

export interface TokenResolver {
  /** The first source's token, or undefined when none has one (public data: no token is sent). */
  resolve(req: TokenRequest): Promise<ResolvedToken | undefined>;
}

export function createTokenResolver(sources: readonly TokenSource[]): TokenResolver {
  return {
    async resolve(req) {
      for (const source of sources) {
        const got = await source.get(req);
        if (got) return got;
      }
      return undefined;
    },
  };
}

/** What a job of `kind` asks of a token at `side` (src/domain.ts KIND_SIDES), or undefined when that side needs none. */
export function operationsFor(kind: JobKind, side: Side): Operation | undefined {
  return KIND_SIDES[kind][side]?.operation;
}

/** The sides of a transfer that need a token, each with its URL and operation. */
export function tokenNeeds(task: Pick<TransferTask, 'kind' | 'source' | 'destination'>): { side: Side; url: URL; operation: Operation }[] {
  const needs = [];
  for (const side of ['source', 'destination'] as const) {
    const wanted = operationsFor(task.kind, side);
    if (!wanted) continue;
    const url = new URL(side === 'source' ? task.source : task.destination);
    // A federation object is prestaged by reading it through a cache: a read token.
    const operation = wanted === 'stage' && isFederated(url) ? 'read' : wanted;
    needs.push({ side, url, operation });
  }
  return needs;
}

/**
 * The tokens one task needs: `token` for the side that writes (or the only side), `sourceToken`
 * for a copy's source, so that one job may span two issuers. The job's explicit tokens, already
 * readable, win over `resolver`'s sources (a copy's source falls back to the job's one token).
 */
export async function tokensForTask(
  task: Pick<TransferTask, 'kind' | 'source' | 'destination'>,
  explicit: { token: string | null; sourceToken: string | null },
  resolver: TokenResolver,
): Promise<Pick<TransferTask, 'token' | 'sourceToken'>> {
  const needs = tokenNeeds(task);
  const twoSided = needs.length > 1;
  const explicitFor = (side: Side) => (twoSided && side === 'source' ? (explicit.sourceToken ?? explicit.token) : explicit.token);
  const tokens = await Promise.all(needs.map(async (n) => explicitFor(n.side) ?? (await resolver.resolve(n))?.token ?? null));
  if (!twoSided) return { token: tokens[0] ?? null };
  const at = (side: Side) => tokens[needs.findIndex((n) => n.side === side)] ?? null;
  return { token: at('destination'), sourceToken: at('source') };
}

const fromAcquired = (got: AcquiredToken): ResolvedToken => ({ token: got.token, source: got.source, expiresAt: got.expiresAt, credentialId: got.credentialId });

/**
 * The wallet's credentials through the broker. `lenient`: a missing credential means "look
 * further" (the CLI, which has other sources); without it, a transfer that needs the user waits.
 */
export function brokerSource(broker: Pick<TokenBroker, 'acquire'>, opts: { lenient?: boolean } = {}): TokenSource {
  return {
    name: 'wallet',
    async get(req) {
      try {
        const got = await broker.acquire(req);
        return got ? fromAcquired(got) : undefined;
      } catch (e) {
        if (opts.lenient && e instanceof PetrelError && e.code === 'CREDENTIAL_NEEDED') return undefined;
        throw e;
      }
    },
  };
}

/** What the CLI asks of the agent over the socket. */
export interface AgentTokenClient {
  token(req: { url: string; operation: Operation }): Promise<{ token: string; source: string; expiresAt?: string | undefined; credential?: string | undefined }>;
}

/**
 * The agent's open wallet, over the socket. `onWaiting` decides what a waiting answer (a
 * credential needed, the wallet closed) means here: by default, look further.
 */
export function agentSource(client: AgentTokenClient, opts: { onWaiting?: (e: PetrelError) => undefined } = {}): TokenSource {
  return {
    name: 'agent',
    async get(req) {
      try {
        const got = await client.token({ url: req.url.href, operation: req.operation });
        return { token: got.token, source: got.source, expiresAt: got.expiresAt ? Date.parse(got.expiresAt) : undefined, credentialId: got.credential };
      } catch (e) {
        if (!(e instanceof PetrelError)) throw e;
        if (e.code === 'AGENT_UNREACHABLE' || e.code === 'NO_ISSUER') return undefined;
        if (WAITING_CODES.has(e.code)) return opts.onWaiting ? opts.onWaiting(e) : undefined;
        throw e;
      }
    },
  };
}

/** WLCG bearer-token discovery (BEARER_TOKEN, BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u<uid>, /tmp/bt_u<uid>). */
export async function discoveredToken(): Promise<ResolvedToken | undefined> {
  const found = await discoverBearerToken();
  return found ? { token: found.token, source: `discovery (${found.from})` } : undefined;
}

export const discoverySource: TokenSource = { name: 'discovery', get: discoveredToken };

/** No source had a token: what the user can run. */
export function noTokenError(req: TokenRequest): PetrelError {
  const flag = req.operation === 'read' ? '' : ` --${req.operation}`;
  return new PetrelError('CREDENTIAL_NEEDED', `no token for ${operationVerb(req.operation)} ${req.url.href}`, { hint: `log in with \`petrel warm ${req.url.href}${flag}\`` });
}
