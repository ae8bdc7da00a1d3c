import type { JobEvent } from '../../src/api/schemas.js';
import type { JobService } from '../../src/jobs/index.js';

/** An in-process job's events as an async stream, like the agent's server-sent events. */
export async function* serviceEvents(service: JobService, id: string, signal?: AbortSignal): AsyncGenerator<JobEvent> {
  const queue: JobEvent[] = [];
  let wake: (() => void) | undefined;
  const { current, unsubscribe } = service.subscribe(id, (ev) => {
    queue.push(ev);
    wake?.();
  });
  const onAbort = () => wake?.();
  signal?.addEventListener('abort', onAbort);
  try {
    yield { type: 'job', job: current };
    while (!signal?.aborted) {
      const ev = queue.shift();
      if (ev) {
        yield ev;
        continue;
      }
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    unsubscribe();
  }
}
