// Tape recalls with the wallet's own short-lived tokens: the IdP issues 60-second access tokens,
// the recall takes five minutes, and every poll must go with a token the storage still accepts.
import { describe, expect, inject, it } from 'vitest';
import { finished, makeHome, startAgent, waitForJob } from '../helpers/agent.js';
import { startTapeServer } from '../helpers/tape-server.js';
import { warmWithApproval } from '../helpers/warm.js';
import { idpStats, setIdpConfig } from '../testbed/index.js';

const tb = inject('testbed');
const PASSWORD = 'correct horse battery staple';

describe('recalls with wallet tokens', () => {
  it('60-second tokens over five minutes of staging: the wallet renews them, the storage refuses none, every file ends on disk', async () => {
    await setIdpConfig(tb, { accessTokenTtl: 60 });
    const server = await startTapeServer(tb, { dialect: 'dcache' });
    const prefix = `${server.url}/tape`;
    const urls = Array.from({ length: 10 }, (_, i) => {
      server.addFile(`/tape/long/f${i}`, { content: 16, delayMs: 290_000 + i * 1_000 });
      return `${prefix}/long/f${i}`;
    });
    // Tokens are used until 15 s before they expire; polls every 2 to 10 s.
    const home = await makeHome(tb, {
      issuers: [{ prefix, issuer: tb.idp.url }],
      tokens: { minValidityMs: 15_000 },
      tape: { fillWaitMs: 300, firstPollMs: 2_000, maxPollMs: 10_000 },
    });
    const agent = await startAgent(home);
    try {
      const warm = await warmWithApproval(tb, home, [prefix, '--stage'], PASSWORD);
      expect(warm.code, warm.stderr).toBe(0);
      const refreshes = async () =>
        (await idpStats(tb)).token.filter((e) => e.grant_type === 'refresh_token' && e.outcome === 'success' && e.scope?.includes('storage.stage:/tape')).reduce((n, e) => n + e.count, 0);
      const before = await refreshes();
      const { id } = await agent.client.submit({ kind: 'prestage', transfers: urls.map((u) => ({ source: u, destination: u })) });
      const job = await waitForJob(agent.client, id, finished, 340_000);
      expect(job.state, JSON.stringify(job)).toBe('succeeded');
      expect(server.stats.refused, 'no call went with an expired or wrong token').toBe(0);
      expect(server.stats.polls).toBeGreaterThan(25);
      // Five minutes of 60-second tokens: renewed at least four times, by refresh grants for the stage scope.
      expect((await refreshes()) - before).toBeGreaterThanOrEqual(4);
      expect(server.stats.stageRequests).toBe(1);
      expect(server.stats.requests[0]?.token.scope).toContain('storage.stage:/tape');
    } finally {
      await agent.stop();
      await setIdpConfig(tb, { accessTokenTtl: 600 });
      await home.cleanup();
    }
  }, 400_000);
});
