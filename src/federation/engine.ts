import { KIND_SIDES } from '../domain.js';
import { asPetrelError, PetrelError } from '../errors.js';
import type { HttpClient, ServerAttempt, TransferContext, TransferEngine, TransferResult, TransferTask } from '../transfer/index.js';
import { createPrestageProbe, prestageAt } from './prestage.js';
import type { CachePreference, FederatedOperation, FederationRouter, Route } from './router.js';
import { createServerHealth } from './server-health.js';

const FEDERATED = /^(pelican|osdf|stash):/i;
const isFederatedText = (text: string): boolean => FEDERATED.test(text);

/** `--cache` as the task carries it: URLs, and a last `+` for "then the director's". */
export function cachePreference(caches: readonly string[] | undefined): CachePreference | undefined {
  if (!caches?.length) return undefined;
  const andDirector = caches.at(-1) === '+';
  return { caches: (andDirector ? caches.slice(0, -1) : caches).map((c) => new URL(c)), andDirector };
}

function tokenNeeded(url: string, route: Route, doing: string): PetrelError {
  return new PetrelError('CREDENTIAL_NEEDED', `${route.namespace.federation}${route.namespace.prefix} needs a token for ${doing} ${url}, and there is none`, {
    hint: `log in with \`petrel warm ${url}${doing === 'reading' ? '' : ' --write'}\` (or pass --token FILE); the transfer waits until then`,
  });
}

/** Pelican's job id header goes with every request of a job, to the director and to the servers. */
const jobHeader = (task: TransferTask): Record<string, string> | undefined => (task.jobId ? { ...task.headers, 'X-Pelican-JobId': task.jobId } : task.headers);

/** What a server says of an object that another namespace may explain. */
const ASK_AGAIN = new Set(['TRANSFER_NOT_FOUND', 'TRANSFER_DENIED', 'CREDENTIAL_NEEDED']);

/** Transient trouble at one server (connection lost, timeout, 5xx, 429, silence): another may serve. */
const failsOver = (e: PetrelError): boolean => e.transient || Boolean(e.unanswered);

/**
 * The engine for federation URLs (pelican://, osdf://), in front of the HTTP engine: each
 * transfer asks the router where its object is, then runs on the HTTP engine against a real
 * server. Reads try the servers best first (the job's healthiest first) and move on after a
 * transient failure, resuming from the bytes already in the part file; writes and copies go to
 * the origin. A public namespace is read without a token: none is sent to its caches.
 */
export function createFederatedEngine(inner: TransferEngine, router: FederationRouter, http: HttpClient): TransferEngine {
  const health = createServerHealth();
  const probe = createPrestageProbe(http);

  /**
   * A get reads the object to its destination; a prestage brings it into the cache only. A
   * refusal on a route built from another object's answer is checked with the director: the
   * object may be in a nested namespace that answer did not know of.
   */
  async function read(task: TransferTask, ctx: TransferContext): Promise<TransferResult> {
    const url = new URL(task.source);
    const how = { jobId: task.jobId, caches: cachePreference(task.caches), signal: ctx.signal };
    const route = await router.route(url, 'read', how);
    try {
      return await readVia(route, task, ctx);
    } catch (e) {
      const err = asPetrelError(e);
      if (!route.learned || ctx.signal.aborted || !ASK_AGAIN.has(err.code)) throw err;
      const fresh = await router.route(url, 'read', { ...how, fresh: true });
      const same = fresh.namespace.prefix === route.namespace.prefix && fresh.servers.map((s) => s.href).join() === route.servers.map((s) => s.href).join();
      if (same) throw err;
      return readVia(fresh, task, ctx);
    }
  }

  async function readVia(route: Route, task: TransferTask, ctx: TransferContext): Promise<TransferResult> {
    const token = route.namespace.requireToken ? task.token : null;
    if (route.namespace.requireToken && !token) throw tokenNeeded(task.source, route, 'reading');
    const attempts: ServerAttempt[] = [];
    let last: PetrelError | undefined;
    for (const server of health.order(task.jobId, route.servers)) {
      try {
        const result = task.kind === 'prestage' ? await prestageAt(http, probe, server, token, jobHeader(task), ctx) : await inner.run({ ...task, source: server.href, token, headers: jobHeader(task) }, ctx);
        health.served(task.jobId, server);
        return { ...result, servedBy: server.origin, ...(attempts.length ? { serverAttempts: attempts } : {}) };
      } catch (e) {
        const err = asPetrelError(e);
        if (ctx.signal.aborted || !failsOver(err)) throw err;
        health.failed(task.jobId, server);
        attempts.push({ server: server.origin, error: err.message });
        last = err;
      }
    }
    if (!last) throw new PetrelError('FEDERATION_NOT_FOUND', `the director of ${route.namespace.federation} names no server for ${route.object.path}`, { hint: 'tell the federation operators' });
    throw new PetrelError(last.code, `every server for ${task.source} failed: ${attempts.map((a) => `${a.server}: ${a.error}`).join('; ')}`, {
      hint: last.hint ?? 'it is retried later; `petrel get --cache URL` names a cache to try first',
      transient: last.transient,
      retryAfterMs: last.retryAfterMs,
      unanswered: attempts.length > 0 && last.unanswered === true,
    });
  }

  /** The origin URL (and the token to send there) of one federated side of a write or a copy. */
  async function origin(text: string, operation: FederatedOperation, token: string | null, task: TransferTask, signal: AbortSignal): Promise<{ url: string; token: string | null }> {
    const route = await router.route(new URL(text), operation, { jobId: task.jobId, signal });
    const writes = operation !== 'directread';
    if ((writes || route.namespace.requireToken) && !token) throw tokenNeeded(text, route, writes ? 'writing' : 'reading');
    const server = route.servers[0];
    if (!server) throw new PetrelError('FEDERATION_NOT_FOUND', `the director of ${route.namespace.federation} names no origin for ${route.object.path}`, { hint: 'tell the federation operators' });
    return { url: server.href, token: writes || route.namespace.requireToken ? token : null };
  }

  return {
    async run(task, ctx) {
      const sides = KIND_SIDES[task.kind];
      const fromFederation = sides.source.location === 'remote' && isFederatedText(task.source);
      const toFederation = sides.destination?.location === 'remote' && isFederatedText(task.destination);
      if (!fromFederation && !toFederation) return inner.run(task, ctx);
      if (task.kind === 'get' || task.kind === 'prestage') return read(task, ctx);
      let routed: TransferTask = { ...task, headers: jobHeader(task) };
      if (fromFederation) {
        // A copy's source side: read at an origin, never a cache (pelican.md §3).
        const src = await origin(task.source, 'directread', task.sourceToken ?? task.token, task, ctx.signal);
        routed = { ...routed, source: src.url, sourceToken: src.token };
      }
      if (toFederation) {
        const dst = await origin(task.destination, task.kind === 'copy' ? 'copy' : 'write', task.token, task, ctx.signal);
        routed = { ...routed, destination: dst.url, token: dst.token };
      }
      const result = await inner.run(routed, ctx);
      return { ...result, servedBy: new URL(toFederation ? routed.destination : routed.source).origin };
    },
    discard: (task) => inner.discard(task),
    close: () => inner.close(),
  };
}
