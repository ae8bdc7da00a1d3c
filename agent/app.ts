import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { API_PREFIX, type Health } from '../src/api/index.js';
import { PetrelError } from '../src/errors.js';
import type { JobService } from '../src/jobs/index.js';
import type { Logger } from '../src/log.js';
import type { WalletSession } from '../src/wallet/index.js';
import { credentialRoutes } from './routes/credentials.js';
import type { TokenService } from '../src/auth/index.js';
import { agentRoutes } from './routes/agent.js';
import { jobRoutes } from './routes/jobs.js';
import { walletRoutes } from './routes/wallet.js';
import { isNdjson, tooLarge } from './ndjson.js';

export interface AppDeps {
  jobs: JobService;
  wallet: WalletSession;
  tokens: Pick<TokenService, 'broker' | 'refresher'>;
  health(): Health;
  shutdown(): void;
  logger: Logger;
  maxRequestBytes: number;
}

/** Served by @hono/node-server: the Node request is at hand (its body read with backpressure). */
export type AppEnv = { Variables: { deps: AppDeps }; Bindings: HttpBindings };

function errorResponse(err: PetrelError) {
  return { error: err.toJSON() };
}

/**
 * A reply before the request's body was read to its end closes the connection: what is left of
 * the body would otherwise be taken for the client's next request.
 */
function closeUnlessRead(c: Context<AppEnv>): void {
  const announced = Number(c.req.header('Content-Length') ?? 0) > 0 || c.req.header('Transfer-Encoding') !== undefined;
  if (announced && !c.env.incoming.complete) c.header('Connection', 'close');
}

/** The socket API: JSON in and out, every error as {"error": {code, message, hint}}. */
export function createApp(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    c.set('deps', deps);
    await next();
  });
  // An NDJSON body is read as it comes, and its size counted there (routes/jobs.ts): this limit
  // would first read a body without Content-Length whole into memory.
  const limit = bodyLimit({
    maxSize: deps.maxRequestBytes,
    onError: (c) => {
      closeUnlessRead(c);
      return c.json(errorResponse(tooLarge(deps.maxRequestBytes)), 413);
    },
  });
  app.use((c, next) => (isNdjson(c.req.header('Content-Type')) ? next() : limit(c, next)));
  app.route(API_PREFIX, agentRoutes);
  app.route(`${API_PREFIX}/jobs`, jobRoutes);
  app.route(`${API_PREFIX}/wallet`, walletRoutes);
  app.route(API_PREFIX, credentialRoutes);

  app.notFound((c) =>
    c.json(errorResponse(new PetrelError('API_NOT_FOUND', `no route ${c.req.method} ${c.req.path}`, { hint: 'see the socket API in the README' })), 404),
  );
  app.onError((err, c) => {
    closeUnlessRead(c);
    if (err instanceof PetrelError) return c.json(errorResponse(err), err.status as ContentfulStatusCode);
    if (err instanceof HTTPException) {
      const code = err.status === 413 ? 'API_PAYLOAD_TOO_LARGE' : 'API_BAD_REQUEST';
      return c.json(errorResponse(new PetrelError(code, err.message || 'bad request')), err.status as ContentfulStatusCode);
    }
    if (c.env.incoming.errored === err) {
      // The client went away in the middle of its request body: nothing of it was kept.
      deps.logger.info('request cut off by the client', { method: c.req.method, path: c.req.path });
      return c.json(errorResponse(new PetrelError('API_BAD_REQUEST', 'the request body was cut off')), 400);
    }
    deps.logger.error('request failed', { method: c.req.method, path: c.req.path, error: err });
    return c.json(errorResponse(new PetrelError('INTERNAL', 'the agent failed to handle the request', { hint: 'see the agent log' })), 500);
  });
  return app;
}
