// Large downloads read straight off a TLS connection (src/transfer/direct-range.ts): against the
// bed's XRootD, and against stand-ins that show what it sends and what it does with replies that
// are not a plain range (ignored Range, a cut body, a redirect to another host).
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, statfsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { PetrelError } from '../../src/errors.js';
import { checksumOf, createChecksummer } from '../../src/transfer/checksum.js';
import { readRangeDirect } from '../../src/transfer/direct-range.js';
import { createHttpClient } from '../../src/transfer/http.js';
import type { TransferTask } from '../../src/transfer/task.js';
import { mintToken, writeDataFile } from '../testbed/index.js';
import { fillDisk, smallDisk, tempDir, testEngine, quietContext } from '../helpers/engine.js';
import { standIn } from '../helpers/stand-in.js';

const tb = inject('testbed');
const MiB = 1 << 20;
/** Small enough for tests: every download of at least 1 MiB goes direct. */
const engine = () => testEngine(tb, { download: { streams: 1, minStreamBytes: 32 * MiB, minRoundTripMs: 10, directMinBytes: MiB } });

interface Seen {
  method: string | undefined;
  range: string | undefined;
  connection: string | undefined;
  auth: string | undefined;
}

/** Serves `data` with ranges as RFC 9110 says (or ignoring them), recording each request. */
function fileServer(data: Buffer, seen: Seen[], opts: { ignoreRange?: boolean; cutRangeAt?: () => number | undefined } = {}) {
  return (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method, range: req.headers.range, connection: req.headers.connection, auth: req.headers.authorization });
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (req.method === 'HEAD') return void res.writeHead(200, { 'Content-Length': String(data.length) }).end();
    if (!m || opts.ignoreRange) return void res.writeHead(200, { 'Content-Length': String(data.length) }).end(data);
    const [first, last] = [Number(m[1]), Number(m[2])];
    res.writeHead(206, { 'Content-Length': String(last - first + 1), 'Content-Range': `bytes ${first}-${last}/${data.length}` });
    const cut = opts.cutRangeAt?.();
    if (cut === undefined) return void res.end(data.subarray(first, last + 1));
    res.write(data.subarray(first, first + cut), () => setTimeout(() => res.socket?.destroy(), 50));
  };
}

const getTask = (source: string, destination: string, token: string | null = 'tok-direct'): TransferTask => ({ kind: 'get', source, destination, token, checksum: 'none' });

describe('direct range reads', () => {
  it("reads a range of a file on XRootD straight into the part file, the adler32 the server's", async () => {
    const data = randomBytes(9 * MiB + 123);
    const path = `/direct-${randomUUID().slice(0, 6)}.bin`;
    await writeDataFile(tb.servers.a, path, data);
    const dir = await tempDir();
    const file = join(dir, 'part');
    const fd = openSync(file, 'w+');
    const client = createHttpClient({ caFile: tb.caFile, connectTimeoutMs: 5_000, idleTimeoutMs: 10_000 });
    const sum = createChecksummer('adler32');
    let counted = 0;
    try {
      const start = 3 * MiB + 7;
      await writeFile(file, data.subarray(0, start));
      sum.update(data.subarray(0, start));
      const declined = await readRangeDirect({
        url: new URL(`${tb.servers.a.url}${path}`),
        token: await mintToken(tb, { scope: 'storage.read:/' }),
        headers: undefined,
        start,
        end: data.length,
        total: data.length,
        fd,
        path: file,
        sum,
        onBytes: (n) => (counted += n),
        guard: () => undefined,
        signal: new AbortController().signal,
        client,
      });
      expect(declined).toBeUndefined();
    } finally {
      closeSync(fd);
      await client.close();
    }
    expect(counted).toBe(data.length - (3 * MiB + 7));
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(sum.digest()).toBe(checksumOf('adler32', data));
  });

  it("refuses a server whose certificate it cannot verify", async () => {
    const dir = await tempDir();
    const fd = openSync(join(dir, 'part'), 'w+');
    // The system's CAs only: the bed's CA is not among them.
    const client = createHttpClient({ connectTimeoutMs: 5_000, idleTimeoutMs: 5_000 });
    try {
      const err = await readRangeDirect({
        url: new URL(`${tb.servers.a.url}/any`),
        token: 'tok-never-sent',
        headers: undefined,
        start: 0,
        end: 10,
        total: 10,
        fd,
        path: join(dir, 'part'),
        sum: undefined,
        onBytes: () => undefined,
        guard: () => undefined,
        signal: new AbortController().signal,
        client,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PetrelError);
      expect((err as PetrelError).message).toMatch(/TLS: cannot verify localhost/);
    } finally {
      closeSync(fd);
      await client.close();
    }
  });

  it('downloads a large file from XRootD, verified, through the engine', async () => {
    const data = randomBytes(5 * MiB);
    const path = `/direct-e-${randomUUID().slice(0, 6)}.bin`;
    await writeDataFile(tb.servers.a, path, data);
    const dir = await tempDir();
    const res = await engine().run({ kind: 'get', source: `${tb.servers.a.url}${path}`, destination: join(dir, 'f'), token: await mintToken(tb, { scope: 'storage.read:/' }), checksum: 'adler32' }, quietContext());
    expect(res.checksum).toEqual({ algorithm: 'adler32', value: checksumOf('adler32', data), verified: true });
    expect((await readFile(join(dir, 'f'))).equals(data)).toBe(true);
  });

  it('asks for the rest as one closed range on a connection it closes, with the token, after the first reply told the size', async () => {
    const data = randomBytes(3 * MiB + 5);
    const seen: Seen[] = [];
    const server = await standIn(tb, fileServer(data, seen));
    const dir = await tempDir();
    await engine().run(getTask(`${server.url}/f`, join(dir, 'f')), quietContext());
    expect((await readFile(join(dir, 'f'))).equals(data)).toBe(true);
    expect(seen).toEqual([
      { method: 'GET', range: undefined, connection: 'keep-alive', auth: 'Bearer tok-direct' },
      { method: 'GET', range: `bytes=0-${data.length - 1}`, connection: 'close', auth: 'Bearer tok-direct' },
    ]);
  });

  it('never sends the token to the host a redirect led to', async () => {
    const data = randomBytes(2 * MiB);
    const seen: Seen[] = [];
    const other = await standIn(tb, fileServer(data, seen));
    const origin = await standIn(tb, (_req, res) => void res.writeHead(307, { Location: `${other.url}/moved` }).end());
    const dir = await tempDir();
    await engine().run(getTask(`${origin.url}/f`, join(dir, 'f')), quietContext());
    expect((await readFile(join(dir, 'f'))).equals(data)).toBe(true);
    expect(seen.map((s) => [s.range ?? 'whole', s.auth])).toEqual([
      ['whole', undefined],
      [`bytes=0-${data.length - 1}`, undefined],
    ]);
  });

  it('takes a server that ignores the range through node:https instead, and that server\'s later files too', async () => {
    const data = randomBytes(2 * MiB);
    const seen: Seen[] = [];
    const server = await standIn(tb, fileServer(data, seen, { ignoreRange: true }));
    const dir = await tempDir();
    const e = engine();
    await e.run(getTask(`${server.url}/f`, join(dir, 'f')), quietContext());
    expect((await readFile(join(dir, 'f'))).equals(data)).toBe(true);
    expect(seen.map((s) => s.range ?? 'whole')).toEqual(['whole', `bytes=0-${data.length - 1}`, 'whole']);
    await e.run(getTask(`${server.url}/g`, join(dir, 'g')), quietContext());
    expect((await readFile(join(dir, 'g'))).equals(data)).toBe(true);
    expect(seen).toHaveLength(4);
  });

  it('keeps what arrived before the connection broke, without a gap, and a retry resumes from there', async () => {
    const data = randomBytes(6 * MiB);
    const seen: Seen[] = [];
    let cuts = 1;
    const server = await standIn(tb, fileServer(data, seen, { cutRangeAt: () => (cuts-- > 0 ? 2 * MiB + 1000 : undefined) }));
    const dir = await tempDir();
    const e = engine();
    const dest = join(dir, 'f');
    const err = await e.run(getTask(`${server.url}/f`, dest), quietContext()).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(PetrelError);
    expect((err as PetrelError).transient).toBe(true);
    const kept = await readFile(`${dest}.petrel-part`);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThanOrEqual(2 * MiB + 1000);
    expect(kept.equals(data.subarray(0, kept.length))).toBe(true);

    await e.run(getTask(`${server.url}/f`, dest), quietContext());
    expect((await readFile(dest)).equals(data)).toBe(true);
    expect(seen.at(-1)?.range).toBe(`bytes=${kept.length}-${data.length - 1}`);
    await expect(stat(`${dest}.petrel-part`)).rejects.toThrow();
  });

  it('stops at once when cancelled, keeping nothing but what a resume can use', async () => {
    const data = randomBytes(8 * MiB);
    const seen: Seen[] = [];
    const server = await standIn(tb, (req, res) => {
      if (req.headers.range) {
        seen.push({ method: req.method, range: req.headers.range, connection: req.headers.connection, auth: undefined });
        res.writeHead(206, { 'Content-Length': String(data.length), 'Content-Range': `bytes 0-${data.length - 1}/${data.length}` });
        res.write(data.subarray(0, MiB)); // and then nothing
        return;
      }
      res.writeHead(200, { 'Content-Length': String(data.length) }).end(data);
    });
    const dir = await tempDir();
    const controller = new AbortController();
    const started = Date.now();
    const run = engine().run(getTask(`${server.url}/f`, join(dir, 'f')), {
      signal: controller.signal,
      onProgress: (p) => {
        if (seen.length && p.bytesDone >= MiB / 2) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'TRANSFER_CANCELLED' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it.runIf(process.getuid?.() === 0)('stops a direct read whose disk fills while it runs, before the disk is full', async () => {
    const dir = await smallDisk(8 * MiB);
    const size = 4 * MiB;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const server = await standIn(tb, (req, res) => {
      if (!req.headers.range) return void res.writeHead(200, { 'Content-Length': String(size) }).end(Buffer.alloc(size, 1));
      res.writeHead(206, { 'Content-Length': String(size), 'Content-Range': `bytes 0-${size - 1}/${size}` });
      res.write(Buffer.alloc(256 << 10, 1));
      void released.then(() => {
        for (let sent = 256 << 10; sent < size; sent += 64 << 10) res.write(Buffer.alloc(64 << 10, 2));
        res.end();
      });
    });
    const task = getTask(`${server.url}/f.bin`, join(dir, 'f.bin'), null);
    const e = engine();
    let counted = 0;
    const run = e.run(task, { signal: new AbortController().signal, onProgress: (p) => (counted = p.bytesDone) }).catch((x: unknown) => x as PetrelError);
    await expect.poll(() => counted, { timeout: 10_000 }).toBeGreaterThanOrEqual(256 << 10);
    fillDisk(dir, 100 << 10);
    release();
    const err = await run;
    expect(err).toBeInstanceOf(PetrelError);
    expect((err as PetrelError).code).toBe('TRANSFER_DISK_FULL');
    // Petrel's own look at the free space stopped it, not the disk refusing a write.
    expect((err as PetrelError).message).toMatch(/not enough space for .*kept in reserve/);
    expect(statfsSync(dir).bavail).toBeGreaterThan(0);
    await e.discard(task);
    expect(existsSync(join(dir, 'f.bin.petrel-part'))).toBe(false);
  });
});
