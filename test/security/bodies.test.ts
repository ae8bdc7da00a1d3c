// Security: a reply body cannot fill the disk. More bytes than announced fail the download, a body
// of unknown size is bounded by maxUnknownSizeBytes, and the free space is watched as it grows.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, statfs, writeFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import type { PetrelError } from '../../src/errors.js';
import type { TransferTask } from '../../src/transfer/task.js';
import { finished, makeHome, startAgent, waitForJob } from '../helpers/agent.js';
import { smallDisk as makeSmallDisk, tempDir as makeTempDir, testEngine, quietContext } from '../helpers/engine.js';
import { standIn } from '../helpers/stand-in.js';

const tb = inject('testbed');
const ctx = quietContext;
const isRoot = process.getuid?.() === 0;
const MiB = 1 << 20;

const tempDir = () => makeTempDir('petrel-body-');
const smallDisk = (size: number) => makeSmallDisk(size, 'petrel-body-');

/** Writes 64 KiB chunks with no Content-Length (chunked) until the client goes away. */
function endless(res: ServerResponse, status = 200, headers: Record<string, string> = {}): void {
  res.writeHead(status, headers);
  const chunk = randomBytes(64 << 10);
  const more = () => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', more);
  };
  res.on('close', () => res.removeAllListeners('drain'));
  more();
}

const engine = (opts: { maxUnknownSizeBytes?: number; diskReserveBytes?: number } = {}) => testEngine(tb, opts);

const get = (url: string, destination: string): TransferTask => ({ kind: 'get', source: url, destination, token: null, checksum: 'adler32' });

describe('bodies that would fill the disk', () => {
  it('a body with no length stops at maxUnknownSizeBytes, as a permanent failure, leaving nothing', async () => {
    const server = await standIn(tb, (_req, res) => endless(res));
    const dir = await tempDir();
    const err = (await engine({ maxUnknownSizeBytes: 5 * MiB }).run(get(`${server.url}/f`, join(dir, 'f')), ctx()).catch((e: unknown) => e)) as PetrelError;
    expect(err.code).toBe('TRANSFER_PROTOCOL');
    expect(err.transient).toBe(false);
    expect(err.message).toContain('announced no size and sent more than 5242880 bytes');
    expect(err.hint).toContain('maxUnknownSizeBytes');
    expect(await readdir(dir)).toEqual([]);
  });

  it('a resumed download whose server answers with more than the size its HEAD gave fails', async () => {
    const server = await standIn(tb, (req, res) => {
      if (req.method === 'HEAD') res.writeHead(200, { 'Content-Length': 3 * MiB }).end();
      else endless(res); // ignores the Range and sends "everything", without end
    });
    const dir = await tempDir();
    await writeFile(join(dir, 'f.petrel-part'), randomBytes(100_000));
    const err = (await engine().run(get(`${server.url}/f`, join(dir, 'f')), ctx()).catch((e: unknown) => e)) as PetrelError;
    expect(err.code).toBe('TRANSFER_PROTOCOL');
    expect(err.message).toContain(`sent more than the ${3 * MiB} bytes it announced`);
    expect(await readdir(dir)).toEqual([]);
  });

  it.runIf(isRoot)('a body with no length stops before the disk is full, keeping the reserve free (a 32 MiB tmpfs)', async () => {
    const disk = await smallDisk(32 * MiB);
    const server = await standIn(tb, (_req, res) => endless(res));
    const err = (await engine().run(get(`${server.url}/f`, join(disk, 'f')), ctx()).catch((e: unknown) => e)) as PetrelError;
    expect(err.code).toBe('TRANSFER_DISK_FULL');
    expect(err.message).toMatch(/not enough space for .*f\.petrel-part: .* free, .* kept in reserve/);
    expect(await readdir(disk)).toEqual([]);
  });

  it.runIf(isRoot)('a download larger than the free space fails before writing a byte', async () => {
    const disk = await smallDisk(16 * MiB);
    await mkdir(join(disk, 'sub'));
    let sent = 0;
    const server = await standIn(tb, (_req, res) => {
      res.writeHead(200, { 'Content-Length': 64 * MiB });
      const chunk = randomBytes(MiB);
      const more = () => {
        while (sent < 64 * MiB && !res.destroyed && res.write(chunk)) sent += MiB;
        if (sent >= 64 * MiB) res.end();
        else if (!res.destroyed) res.once('drain', more);
      };
      more();
    });
    const before = (await statfs(disk)).bavail;
    const err = (await engine().run(get(`${server.url}/big`, join(disk, 'sub', 'big')), ctx()).catch((e: unknown) => e)) as PetrelError;
    expect(err.code).toBe('TRANSFER_DISK_FULL');
    expect(err.message).toContain('64 MiB more needed');
    expect(err.transient).toBe(false);
    expect(await readdir(join(disk, 'sub'))).toEqual([]);
    expect((await statfs(disk)).bavail).toBe(before);
  });

  it('through the agent: the endless body fails its transfer with the reason, and the agent keeps answering', async () => {
    const server = await standIn(tb, (_req, res) => endless(res));
    const home = await makeHome(tb, { maxUnknownSizeBytes: 4 * MiB });
    onTestFinished(() => home.cleanup());
    const agent = await startAgent(home);
    onTestFinished(async () => {
      await agent.stop();
    });
    const dir = await tempDir();
    const { id } = await agent.client.submit({ kind: 'get', transfers: [{ source: `${server.url}/f`, destination: join(dir, 'f') }] });
    const job = await waitForJob(agent.client, id, finished, 60_000);
    expect(job.state).toBe('failed');
    const detail = await agent.client.job(id);
    expect(detail.transfers[0]?.error?.message).toContain('announced no size and sent more than 4194304 bytes');
    expect(detail.transfers[0]?.attempts).toBe(1);
    expect((await agent.client.health()).ok).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });
});
