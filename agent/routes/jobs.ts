import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { isFinal, JobDetailQuery, ListJobsQuery, SubmitJobRequest, type JobEvent } from '../../src/api/schemas.js';
import type { AppEnv } from '../app.js';
import { jsonBody, queryOf } from '../validate.js';

const KEEPALIVE_MS = 15_000;

export const jobRoutes = new Hono<AppEnv>()
  .post('/', ...jsonBody(SubmitJobRequest), (c) => {
    const job = c.var.deps.jobs.submit(c.req.valid('json'));
    return c.json({ id: job.id, job }, 201);
  })
  .get('/', queryOf(ListJobsQuery), (c) => c.json(c.var.deps.jobs.list(c.req.valid('query')), 200))
  .get('/:id', queryOf(JobDetailQuery), (c) => c.json(c.var.deps.jobs.detail(c.req.param('id'), c.req.valid('query')), 200))
  .post('/:id/cancel', async (c) => c.json(await c.var.deps.jobs.cancel(c.req.param('id')), 200))
  .post('/:id/retry', (c) => c.json(c.var.deps.jobs.retry(c.req.param('id')), 200))
  .get('/:id/events', (c) => {
    const jobs = c.var.deps.jobs;
    const id = c.req.param('id');
    jobs.view(id); // 404 before the stream starts
    return streamSSE(c, async (stream) => {
      const queue: JobEvent[] = [];
      let wake: (() => void) | undefined;
      const { current, unsubscribe } = jobs.subscribe(id, (ev) => {
        queue.push(ev);
        wake?.();
      });
      let open = true;
      stream.onAbort(() => {
        open = false;
        wake?.();
      });
      try {
        queue.unshift({ type: 'job', job: current });
        while (open) {
          if (!queue.length) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, KEEPALIVE_MS);
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
            wake = undefined;
            if (!queue.length && open) await stream.write(': keep-alive\n\n');
            continue;
          }
          const ev = queue.shift() as JobEvent;
          await stream.writeSSE({ event: ev.type, data: JSON.stringify(ev) });
          if (ev.type === 'job' && isFinal(ev.job.state) && ev.job.finishedAt) break;
        }
      } finally {
        unsubscribe();
      }
    });
  });
