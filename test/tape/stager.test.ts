// The stager in a job service of this process (the queue in memory, the tape stand-in real).
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { AgentConfigSchema } from '../../src/config.js';
import { createJobService } from '../../src/jobs/index.js';
import { silentLogger } from '../../src/log.js';
import { testEngine } from '../helpers/engine.js';
import { startTapeServer } from '../helpers/tape-server.js';
import { mintToken } from '../testbed/index.js';

const tb = inject('testbed');

describe('the stager', () => {
  // Regression (found by the wallet-token test): a round of polls with nothing due ended
  // synchronously and left the poller marked busy for good, so no request was polled again.
  it('a poll round with nothing due (a timer firing a moment early) does not stop later polls', async () => {
    const before = process.env.PETREL_CA_FILE;
    process.env.PETREL_CA_FILE = tb.caFile;
    onTestFinished(() => {
      if (before === undefined) delete process.env.PETREL_CA_FILE;
      else process.env.PETREL_CA_FILE = before;
    });
    const config = AgentConfigSchema.parse({ tape: { fillWaitMs: 100, firstPollMs: 100, maxPollMs: 200 } });
    const service = createJobService({ database: ':memory:', engine: testEngine(tb), config, logger: silentLogger, runId: randomUUID() });
    onTestFinished(() => service.stop());
    service.start();
    await service.pollRecalls();
    const server = await startTapeServer(tb, { dialect: 'eos' });
    server.addFile('/tape/early/f', { delayMs: 300 });
    const url = `${server.url}/tape/early/f`;
    const job = service.submit({ kind: 'prestage', checksum: 'none', token: await mintToken(tb, { scope: 'storage.stage:/tape' }), transfers: [{ source: url, destination: url }] });
    for (let i = 0; i < 100 && service.view(job.id).finishedAt === undefined; i++) await sleep(50);
    expect(service.view(job.id).state).toBe('succeeded');
    expect(server.stats.polls).toBeGreaterThan(0);
  });
});
