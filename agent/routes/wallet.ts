import { Hono } from 'hono';
import { OpenWalletRequest } from '../../src/api/index.js';
import type { AppEnv } from '../app.js';
import { jsonBody } from '../validate.js';

export const walletRoutes = new Hono<AppEnv>()
  .get('/', async (c) => c.json(await c.var.deps.wallet.status(), 200))
  .post('/open', ...jsonBody(OpenWalletRequest), async (c) => {
    const { password, lifetime } = c.req.valid('json');
    await c.var.deps.wallet.open(password, lifetime === undefined ? undefined : lifetime * 1000);
    return c.json(await c.var.deps.wallet.status(), 200);
  })
  .post('/close', async (c) => {
    c.var.deps.wallet.close();
    return c.json(await c.var.deps.wallet.status(), 200);
  });
