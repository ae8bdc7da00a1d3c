import type { JobEvent } from '../api/schemas.js';

export type JobListener = (event: JobEvent) => void;

/** Per-job listeners for progress and state changes (the SSE route subscribes here). */
export function createJobEvents() {
  const listeners = new Map<string, Set<JobListener>>();
  return {
    subscribe(jobId: string, fn: JobListener): () => void {
      let set = listeners.get(jobId);
      if (!set) listeners.set(jobId, (set = new Set()));
      set.add(fn);
      return () => {
        set.delete(fn);
        if (set.size === 0) listeners.delete(jobId);
      };
    },
    has(jobId: string): boolean {
      return listeners.has(jobId);
    },
    emit(jobId: string, event: JobEvent): void {
      for (const fn of listeners.get(jobId) ?? []) fn(event);
    },
  };
}

export type JobEvents = ReturnType<typeof createJobEvents>;
