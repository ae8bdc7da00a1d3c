import { Hono } from 'hono';
import type { AppEnv } from '../app.js';

export const agentRoutes = new Hono<AppEnv>()
  .get('/health', (c) => c.json(c.var.deps.health(), 200))
  .post('/agent/shutdown', (c) => {
    // Answer first, then stop: the reply must get out before the socket closes.
    setImmediate(() => c.var.deps.shutdown());
    return c.json({ stopping: true as const, pid: process.pid }, 202);
  });
