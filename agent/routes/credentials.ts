import { Hono } from 'hono';
import { TokenRequest, type TokenReply } from '../../src/api/index.js';
import { PetrelError } from '../../src/errors.js';
import type { AppEnv } from '../app.js';
import { jsonBody } from '../validate.js';

export const credentialRoutes = new Hono<AppEnv>()
  // Runs the background refresh now and answers when it is done.
  .post('/credentials/refresh', async (c) => c.json(await c.var.deps.tokens.refresher.runNow(), 200))
  // An access token for other tools; the socket is the user's own (0600).
  .post('/tokens', ...jsonBody(TokenRequest), async (c) => {
    const { url, operation } = c.req.valid('json');
    const got = await c.var.deps.tokens.broker.acquire({ url: new URL(url), operation });
    if (!got) {
      throw new PetrelError('NO_ISSUER', `no credential or issuer is known for ${url}`, { hint: `add an issuer for it to config.json, then \`petrel warm ${url}\`` });
    }
    const reply: TokenReply = {
      token: got.token,
      source: got.source,
      ...(got.expiresAt ? { expiresAt: new Date(got.expiresAt).toISOString() } : {}),
      ...(got.credentialId ? { credential: got.credentialId } : {}),
    };
    return c.json(reply, 200);
  });
