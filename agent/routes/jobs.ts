import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { JobDetailQuery, JobEventsQuery, ListJobsQuery, SubmitJobRequest } from '../../src/api/schemas.js';
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
  .get('/:id/events', queryOf(JobEventsQuery), (c) => {
    const jobs = c.var.deps.jobs;
    const id = c.req.param('id');
    const transfers = c.req.valid('query').transfers === 'true';
    jobs.view(id); // 404 before the stream starts
    return streamSSE(c, async (stream) => {
      const closed = new AbortController();
      stream.onAbort(() => closed.abort());
      const keepAlive = setInterval(() => void stream.write(': keep-alive\n\n').catch(() => undefined), KEEPALIVE_MS);
      try {
        for await (const ev of jobs.follow(id, closed.signal, { transfers })) await stream.writeSSE({ event: ev.type, data: JSON.stringify(ev) });
      } finally {
        clearInterval(keepAlive);
      }
    });
  });
