import type { FederationSetting } from '../config.js';
import type { HttpClient } from '../transfer/index.js';
import { createDiscovery } from './discovery.js';
import { askDirector, type DirectorAnswer, type DirectorVerb } from './director.js';
import type { NamespaceHeader, TokenGeneration } from './headers.js';
import { federatedObject, objectAt, serverBase, type FederatedObject } from './objects.js';

/** What is done with a federation object; it decides the director's verb and so cache or origin. */
export type FederatedOperation = 'read' | 'directread' | 'write' | 'copy' | 'list' | 'delete';

const VERBS: Record<FederatedOperation, DirectorVerb> = { read: 'GET', directread: 'GET', write: 'PUT', copy: 'COPY', list: 'PROPFIND', delete: 'DELETE' };

export interface Namespace extends NamespaceHeader {
  federation: string;
  issuers: string[];
  tokenGeneration?: TokenGeneration | undefined;
}

/** Where one operation on one object goes. */
export interface Route {
  object: FederatedObject;
  namespace: Namespace;
  /** The object's URL at each server to try, best first. */
  servers: URL[];
  /** Built from an answer about another object of the namespace, not asked for this one. */
  learned: boolean;
}

/** `--cache URL…`: caches tried first; `andDirector` (a trailing `+`) adds the director's after them. */
export interface CachePreference {
  caches: URL[];
  andDirector: boolean;
}

export interface RouteOptions {
  jobId?: string | undefined;
  caches?: CachePreference | undefined;
  signal?: AbortSignal | undefined;
  /** Ask the director about this object even if its namespace is known (a nested namespace the answer kept does not know of). */
  fresh?: boolean | undefined;
}

export interface RouterOptions {
  client: HttpClient;
  federations: Readonly<Record<string, FederationSetting>>;
  discoveryTtlMs: number;
  failedDiscoveryTtlMs: number;
  namespaceTtlMs: number;
  now?: () => number;
}

interface Learned {
  namespace: Namespace;
  /** The servers' roots, best first; empty when the answer's URLs do not end in the object's path. */
  bases: URL[];
  until: number;
}

const covers = (prefix: string, path: string) => prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
const parentOf = (path: string) => path.slice(0, path.lastIndexOf('/')) || '/';

/**
 * Routes federation objects to servers through their federation's director. A director answers
 * per object, but its servers serve the whole namespace: the answer is kept per (federation,
 * caches-or-origins, namespace prefix) for `namespaceTtlMs`, and the objects under it are routed
 * without asking again. So a 10,000-file job asks the director about once per namespace, and
 * concurrent first asks in one directory share one query.
 */
export function createRouter(opts: RouterOptions) {
  const now = opts.now ?? Date.now;
  const discovery = createDiscovery({ client: opts.client, ttlMs: opts.discoveryTtlMs, failedTtlMs: opts.failedDiscoveryTtlMs, now });
  const learned = new Map<string, Learned[]>();
  const pending = new Map<string, Promise<Learned>>();
  let directorQueries = 0;

  function known(key: string, path: string): Learned | undefined {
    const t = now();
    const live = (learned.get(key) ?? []).filter((l) => l.until > t);
    learned.set(key, live);
    return live.filter((l) => covers(l.namespace.prefix, path)).sort((a, b) => b.namespace.prefix.length - a.namespace.prefix.length)[0];
  }

  function remember(key: string, object: FederatedObject, answer: DirectorAnswer): Learned {
    const namespace: Namespace = { ...answer.namespace, federation: object.federation, issuers: answer.issuers, tokenGeneration: answer.tokenGeneration };
    const bases = answer.servers.map((u) => serverBase(u, object.path));
    const entry: Learned = { namespace, bases: bases.every((b) => b !== undefined) ? bases : [], until: now() + opts.namespaceTtlMs };
    const list = (learned.get(key) ?? []).filter((l) => l.namespace.prefix !== namespace.prefix);
    learned.set(key, [...list, entry]);
    return entry;
  }

  async function ask(object: FederatedObject, verb: DirectorVerb, directRead: boolean, o: RouteOptions): Promise<DirectorAnswer> {
    const info = await discovery.get(object.discovery, o.signal);
    directorQueries++;
    return askDirector(opts.client, { director: info.director, verb, path: object.path, directRead: verb === 'GET' && directRead, jobId: o.jobId, federation: object.federation, signal: o.signal });
  }

  return {
    async route(url: URL, operation: FederatedOperation, o: RouteOptions = {}): Promise<Route> {
      const object = federatedObject(url, opts.federations);
      const directRead = operation !== 'read' || object.directRead;
      const verb = VERBS[operation];
      const key = `${object.federation}\n${directRead ? 'origin' : 'cache'}`;
      let entry = o.fresh ? undefined : known(key, object.path);
      let servers: URL[] | undefined;
      if (o.fresh) {
        const answer = await ask(object, verb, directRead, o);
        entry = remember(key, object, answer);
        servers = answer.servers;
      } else if (!entry?.bases.length) {
        // Concurrent first asks in one directory wait for one query, whose namespace likely covers them all.
        const flight = `${key}\n${parentOf(object.path)}`;
        const shared = entry ? undefined : pending.get(flight);
        if (shared) entry = await shared.catch(() => undefined);
        if (!entry?.bases.length || !covers(entry.namespace.prefix, object.path)) {
          const asking = ask(object, verb, directRead, o).then((answer) => ({ answer, entry: remember(key, object, answer) }));
          if (!shared && !pending.has(flight)) {
            const learning = asking.then((x) => x.entry);
            pending.set(flight, learning);
            void learning.catch(() => undefined).finally(() => pending.delete(flight));
          }
          const got = await asking;
          entry = got.entry;
          servers = got.answer.servers;
        }
      }
      const learned = servers === undefined;
      servers ??= entry.bases.map((b) => objectAt(b, object.path));
      if (operation === 'list' && entry.namespace.collectionsUrl) servers = [objectAt(entry.namespace.collectionsUrl, object.path)];
      if (operation === 'read' && o.caches?.caches.length) {
        const preferred = o.caches.caches.map((c) => objectAt(c, object.path));
        servers = o.caches.andDirector ? [...preferred, ...servers.filter((s) => !preferred.some((p) => p.origin === s.origin))] : preferred;
      }
      return { object, namespace: entry.namespace, servers, learned };
    },

    /** Director queries made so far (the bench and the tests count them). */
    directorQueries: (): number => directorQueries,
  };
}

export type FederationRouter = ReturnType<typeof createRouter>;
