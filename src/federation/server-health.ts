/** Jobs whose server records are kept, at most: the oldest is forgotten first. */
const MAX_JOBS = 1_000;

/**
 * Errors per server within a job, in memory: a cache that failed once is tried after the
 * healthy ones for the rest of the job (the director's order stands among equals).
 */
export function createServerHealth() {
  const jobs = new Map<string, Map<string, number>>();

  function of(jobId: string | undefined): Map<string, number> | undefined {
    if (jobId === undefined) return undefined;
    let m = jobs.get(jobId);
    if (!m) {
      m = new Map();
      jobs.set(jobId, m);
      if (jobs.size > MAX_JOBS) jobs.delete(jobs.keys().next().value as string);
    }
    return m;
  }

  return {
    order(jobId: string | undefined, servers: readonly URL[]): URL[] {
      const errors = jobId === undefined ? undefined : jobs.get(jobId);
      if (!errors) return [...servers];
      return servers.map((s, i) => ({ s, i, n: errors.get(s.origin) ?? 0 })).sort((a, b) => a.n - b.n || a.i - b.i).map((x) => x.s);
    },
    failed(jobId: string | undefined, server: URL): void {
      const m = of(jobId);
      m?.set(server.origin, (m.get(server.origin) ?? 0) + 1);
    },
    served(jobId: string | undefined, server: URL): void {
      // A server that serves again is forgiven one error.
      const m = jobId === undefined ? undefined : jobs.get(jobId);
      const n = m?.get(server.origin);
      if (m && n) m.set(server.origin, n - 1);
    },
  };
}
