// get and put through a real agent child process against the XRootD test bed.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { checksumOf } from '../../src/transfer/checksum.js';
import { finished, makeHome, petrel, startAgent, waitForJob, type Home, type RunningAgent } from '../helpers/agent.js';
import { partFiles } from '../helpers/files.js';
import { mintToken, startXrootd, stopServer, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');
const { a } = tb.servers;
let home: Home;
let agent: RunningAgent;
let tokenFile: string;

beforeAll(async () => {
  // A short idle timeout: a request the server leaves hanging is retried within the test's time.
  home = await makeHome(tb, { idleTimeoutMs: 15_000, retry: { attempts: 5, baseDelayMs: 200, maxDelayMs: 1000 } });
  agent = await startAgent(home);
  tokenFile = join(home.dir, 'token');
  await writeFile(tokenFile, `${await mintToken(tb, { scope: 'storage.read:/ storage.create:/ storage.modify:/' })}\n`, { mode: 0o600 });
});
afterAll(async () => {
  await agent?.stop();
  await home?.cleanup();
});

describe('get and put through the agent', () => {
  it('puts then gets a 64 MiB file: the bytes are equal and adler32 is checked on both ways', async () => {
    const data = randomBytes(64 << 20);
    const src = join(home.dir, 'big.bin');
    await writeFile(src, data);
    const url = `${a.url}/rt-${randomUUID().slice(0, 8)}/big.bin`;

    const put = await petrel(home, ['put', '--async', '--wait', '--json', '--token', tokenFile, src, url]);
    expect(put.code, put.stderr + put.stdout).toBe(0);
    expect(JSON.parse(put.stdout)).toMatchObject({ state: 'succeeded', bytesDone: data.length, checksum: 'adler32' });

    const got = await petrel(home, ['get', '--async', '--wait', '--json', '--token', tokenFile, url, join(home.dir, 'back/')]);
    expect(got.code, got.stderr + got.stdout).toBe(0);
    const back = await readFile(join(home.dir, 'back', 'big.bin'));
    expect(back.equals(data), 'downloaded bytes equal the uploaded ones').toBe(true);

    const detail = await agent.client.job(JSON.parse(got.stdout).id);
    expect(detail.transfers[0]?.checksum, 'the server-side adler32 was compared').toEqual({ algorithm: 'adler32', value: checksumOf('adler32', data), verified: true });
    expect(await partFiles(join(home.dir, 'back'))).toEqual([]);
  });

  it('fails at once with the server’s reason when no token is given, without retrying', async () => {
    const path = `/noauth-${randomUUID().slice(0, 8)}.bin`;
    await writeDataFile(a, path, 1024);
    const res = await petrel(home, ['get', '--async', '--wait', '--json', `${a.url}${path}`, join(home.dir, 'noauth.bin')]);
    expect(res.code).toBe(1);
    const job = JSON.parse(res.stdout);
    expect(job.state).toBe('failed');
    expect(job.failedTransfers[0].error.code).toBe('TRANSFER_DENIED');
    expect(job.failedTransfers[0].error.message).toMatch(/403 Unable to open \/noauth-\w+\.bin; permission denied/);
    expect(job.failedTransfers[0].attempts, 'a permanent refusal is not retried').toBe(1);
  });

  it('fails at once when the token lacks the scope for the path', async () => {
    const path = `/scoped-${randomUUID().slice(0, 8)}/f.bin`;
    await writeDataFile(a, path, 1024);
    const token = await mintToken(tb, { scope: 'storage.read:/elsewhere' });
    const { id } = await agent.client.submit({ kind: 'get', token, transfers: [{ source: `${a.url}${path}`, destination: join(home.dir, 'scoped.bin') }] });
    const job = await waitForJob(agent.client, id, finished);
    expect(job.state).toBe('failed');
    const t = (await agent.client.job(id)).transfers[0];
    expect(t?.error?.code).toBe('TRANSFER_DENIED');
    expect(t?.error?.message).toContain('permission denied');
    expect(t?.attempts).toBe(1);
  });

  it('a put with a token that may only read is refused at once with the server’s reason', async () => {
    const src = join(home.dir, 'small.txt');
    await writeFile(src, 'hello');
    const token = await mintToken(tb, { scope: 'storage.read:/' });
    const { id } = await agent.client.submit({ kind: 'put', token, transfers: [{ source: src, destination: `${a.url}/ro-${randomUUID().slice(0, 8)}.txt` }] });
    const job = await waitForJob(agent.client, id, finished);
    expect(job.state).toBe('failed');
    expect(job.error?.code).toBe('TRANSFER_DENIED');
    expect(job.error?.message).toMatch(/403 .*permission denied/);
  });

  it('a missing remote file fails at once as not found', async () => {
    const res = await petrel(home, ['get', '--async', '--wait', '--json', '--token', tokenFile, `${a.url}/does-not-exist-${randomUUID()}`, join(home.dir, 'x/')]);
    expect(res.code).toBe(1);
    const job = JSON.parse(res.stdout);
    expect(job.failedTransfers[0].error.code).toBe('TRANSFER_NOT_FOUND');
    expect(job.failedTransfers[0].attempts).toBe(1);
  });

  it('runs one job of 1,200 small files to the end, every file correct (submitted as NDJSON, above 1,000)', async () => {
    // A server of its own: the other test files' aborted downloads can crash a shared XRootD 5.5.3
    // while this job opens connections (see resilience.test.ts).
    const a = await startXrootd(tb, `m${randomUUID().slice(0, 4)}`);
    onTestFinished(() => stopServer(a));
    const dir = `/many-${randomUUID().slice(0, 8)}`;
    const contents = new Map<string, Buffer>();
    for (let i = 0; i < 1200; i++) {
      const data = randomBytes(1024 + (i % 7) * 100);
      contents.set(`f${i}.dat`, data);
      await writeDataFile(a, `${dir}/f${i}.dat`, data);
    }
    const list = join(home.dir, 'many.txt');
    await writeFile(list, [...contents.keys()].map((n) => `${a.url}${dir}/${n}`).join('\n'));
    const out = join(home.dir, 'many');
    // Without server digests: XRootD 5.5.3 at times leaves a `Want-Digest` HEAD unanswered for
    // minutes on a busy disk (seen in CI right after `npm ci`); Petrel then times out and retries,
    // which is right but too slow for this test. The test compares every file's bytes itself;
    // digest checks have their own tests.
    const res = await petrel(home, ['get', '--async', '--wait', '--json', '--checksum', 'none', '--token', tokenFile, '--from-file', list, `${out}/`], { timeoutMs: 170_000 });
    const why = async () => `${res.stderr}${res.stdout.slice(0, 3000)}\n${JSON.stringify(await agent.client.list({ state: 'running' }))}\n${agent.log().slice(-3000)}`;
    if (res.code !== 0) expect.fail(await why());
    expect(JSON.parse(res.stdout).counts).toMatchObject({ total: 1200, succeeded: 1200 });
    for (const [name, data] of contents) {
      expect((await readFile(join(out, name))).equals(data), name).toBe(true);
    }
  }, 180_000);

  it('keeps to the per-host limit while using the global one across hosts', async () => {
    const h = await makeHome(tb, { concurrency: 4, perHostConcurrency: 1 });
    onTestFinished(() => h.cleanup());
    const limited = await startAgent(h);
    onTestFinished(async () => {
      await limited.stop();
    });
    const dir = `/hosts-${randomUUID().slice(0, 8)}`;
    const transfers = [];
    for (const server of [tb.servers.a, tb.servers.b]) {
      for (let i = 0; i < 6; i++) {
        await writeDataFile(server, `${dir}/f${i}`, 16 << 20);
        transfers.push({ source: `${server.url}${dir}/f${i}`, destination: join(h.dir, server.name, `f${i}`) });
      }
    }
    const token = await mintToken(tb, { scope: 'storage.read:/' });
    const { id } = await limited.client.submit({ kind: 'get', token, transfers });
    let most = 0;
    for (;;) {
      const job = await limited.client.job(id, { transferState: 'running', transferLimit: 100 });
      const perHost = new Map<string, number>();
      for (const t of job.transfers) perHost.set(new URL(t.source).host, (perHost.get(new URL(t.source).host) ?? 0) + 1);
      for (const n of perHost.values()) expect(n, 'running transfers on one host').toBeLessThanOrEqual(1);
      most = Math.max(most, job.transfers.length);
      if (job.finishedAt) {
        expect(job.state).toBe('succeeded');
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(most, 'both hosts ran at once').toBe(2);
  }, 120_000);
});
