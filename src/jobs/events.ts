import type { JobEvent } from '../api/index.js';

export type JobListener = (event: JobEvent) => void;

export interface Subscription {
  /** Whether the listener takes per-transfer events (else only job and progress events). */
  transfers: boolean;
}

/** Per-job listeners for progress and state changes (the SSE route subscribes here). */
export function createJobEvents() {
  const listeners = new Map<string, Map<JobListener, Subscription>>();
  return {
    subscribe(jobId: string, fn: JobListener, sub: Subscription = { transfers: true }): () => void {
      let subs = listeners.get(jobId);
      if (!subs) listeners.set(jobId, (subs = new Map()));
      subs.set(fn, sub);
      return () => {
        subs.delete(fn);
        if (subs.size === 0) listeners.delete(jobId);
      };
    },
    has(jobId: string): boolean {
      return listeners.has(jobId);
    },
    /** Whether anyone takes this job's per-transfer events: building them costs a read and a view. */
    wantsTransfers(jobId: string): boolean {
      for (const sub of listeners.get(jobId)?.values() ?? []) if (sub.transfers) return true;
      return false;
    },
    emit(jobId: string, event: JobEvent): void {
      for (const [fn, sub] of listeners.get(jobId) ?? []) if (event.type !== 'transfer' || sub.transfers) fn(event);
    },
  };
}

export type JobEvents = ReturnType<typeof createJobEvents>;
