import { Hono, type MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import { JobDetailQuery, JobEventsQuery, ListJobsQuery, SubmitJobHeader, SubmitJobRequest, TransferSpec } from '../../src/api/index.js';
import { PetrelError } from '../../src/errors.js';
import type { AppEnv } from '../app.js';
import { isNdjson, ndjsonLines } from '../ndjson.js';
import { jsonBody, parseWith, queryOf } from '../validate.js';

const KEEPALIVE_MS = 15_000;

const parseHeader = parseWith(SubmitJobHeader, 'line 1');

/**
 * POST /v1/jobs as NDJSON: the request without `transfers` on the first line, then one transfer a
 * line, each checked as it arrives. Other bodies go on to the JSON handler.
 */
const submitNdjson: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!isNdjson(c.req.header('Content-Type'))) return next();
  // The Node stream, not the web one made from it: that one reads ahead of us without bound.
  const lines = ndjsonLines(c.env.incoming, c.var.deps.maxRequestBytes);
  const first = await lines.next();
  if (first.done) throw new PetrelError('API_BAD_REQUEST', 'the body is empty', { hint: 'the first line holds the job, the transfers follow one a line' });
  const job = c.var.deps.jobs.begin(parseHeader(first.value.value));
  try {
    for await (const { line, value } of lines) job.add(parseWith(TransferSpec, `line ${line}`)(value));
    const view = job.commit();
    return c.json({ id: view.id, job: view }, 201);
  } finally {
    // A bad line or a client gone mid-body: nothing of the job stays.
    job.abandon();
  }
};

export const jobRoutes = new Hono<AppEnv>()
  .post('/', submitNdjson, ...jsonBody(SubmitJobRequest), (c) => {
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
