// Large downloads in byte ranges at once (config `download.streams`): the first range on the
// engine's thread, the others on worker threads. Against the test bed's XRootD for the bytes and
// checksums, and small HTTPS stand-ins for what XRootD does not do: ignoring Range, dropping a
// range's connection midway, a range that never ends.
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import type { PetrelError } from '../../src/errors.js';
import { checksumOf, combineDigests } from '../../src/transfer/checksum.js';
import { gaplessLength, splitRanges } from '../../src/transfer/ranged-get.js';
import type { TransferTask } from '../../src/transfer/task.js';
import { quietContext, tempDir, testEngine } from '../helpers/engine.js';
import { standIn } from '../helpers/stand-in.js';
import { mintToken, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');
const { a } = tb.servers;
const MiB = 1 << 20;
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as PetrelError);
/** Files of 16 MiB and more go in ranges of at least 8 MiB, three at most, however near the server. */
const split = { download: { streams: 3, minStreamBytes: 8 * MiB, minRoundTripMs: 0 } };

interface Served {
  ranges: (string | undefined)[];
}

/**
 * Serves `body` with Range support as XRootD answers it (206, a closed range, Content-Range),
 * recording each GET's Range header. `onRange` may take over a ranged reply.
 */
async function rangedStandIn(body: Buffer, opts: { ignoreRanges?: boolean; delayMs?: number; onRange?: (start: number, end: number, res: ServerResponse) => boolean } = {}) {
  const served: Served = { ranges: [] };
  const server = await standIn(tb, (req: IncomingMessage, res: ServerResponse) => {
    if (opts.delayMs) setTimeout(() => answer(req, res), opts.delayMs);
    else answer(req, res);
  });
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'HEAD') return res.writeHead(200, { 'Content-Length': body.length, Digest: `adler32=${checksumOf('adler32', body)}` }).end();
    served.ranges.push(req.headers.range);
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m || opts.ignoreRanges) {
      // The head goes first: the stand-in shares the client's thread, and encrypting the whole
      // body before the client reads the head would look like a distant server.
      res.writeHead(200, { 'Content-Length': body.length }).flushHeaders();
      setTimeout(() => res.end(body), 20);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), body.length - 1);
    if (opts.onRange?.(start, end, res)) return;
    res.writeHead(206, { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${body.length}` }).end(body.subarray(start, end + 1));
  };
  return { url: `${server.url}/big.bin`, served };
}

const getTask = (source: string, destination: string, extra: Partial<TransferTask> = {}): TransferTask => ({ kind: 'get', source, destination, token: null, checksum: 'adler32', ...extra });

describe('multi-stream downloads', () => {
  it('splits a file into whole-MiB ranges, none below the minimum, at most `streams`', () => {
    expect(splitRanges(100 * MiB, { streams: 2, minStreamBytes: 32 * MiB })).toEqual([
      { start: 0, end: 50 * MiB },
      { start: 50 * MiB, end: 100 * MiB },
    ]);
    expect(splitRanges(40 * MiB, { streams: 4, minStreamBytes: 32 * MiB })).toEqual([{ start: 0, end: 40 * MiB }]);
    const odd = splitRanges(30 * MiB + 5, { streams: 3, minStreamBytes: 8 * MiB });
    expect(odd.map((r) => r.end - r.start)).toEqual([11 * MiB, 11 * MiB, 8 * MiB + 5]);
    expect(gaplessLength(odd, [11 * MiB, 3, 8 * MiB + 5])).toBe(11 * MiB + 3);
    expect(gaplessLength(odd, [100, 11 * MiB, 8 * MiB + 5])).toBe(100);
  });

  it.each(['adler32', 'crc32c'] as const)('combines the %s of the pieces into the whole file\'s', (algo) => {
    const data = randomBytes(200_003);
    for (const cut of [0, 1, 65_521, 131_072, 200_003]) {
      const whole = combineDigests(algo, checksumOf(algo, data.subarray(0, cut)), checksumOf(algo, data.subarray(cut)), data.length - cut);
      expect(whole).toBe(checksumOf(algo, data));
    }
  });

  it.each(['adler32', 'crc32c', 'none'] as const)('gets a file from XRootD in three ranges at once, %s verified against the server', async (algo) => {
    const data = randomBytes(40 * MiB + 12_345);
    const path = `/multi-${algo}-${randomUUID().slice(0, 6)}.bin`;
    await writeDataFile(a, path, data);
    const dir = await tempDir();
    const token = await mintToken(tb, { scope: 'storage.read:/' });
    let last = 0;
    const res = await testEngine(tb, split).run(getTask(`${a.url}${path}`, join(dir, 'f'), { token, checksum: algo }), {
      signal: new AbortController().signal,
      onProgress: (p) => (last = p.bytesDone),
    });
    expect((await readFile(join(dir, 'f'))).equals(data)).toBe(true);
    expect(res.bytesDone).toBe(data.length);
    expect(last).toBe(data.length);
    if (algo === 'none') expect(res.checksum).toBeUndefined();
    else expect(res.checksum).toEqual({ algorithm: algo, value: checksumOf(algo, data), verified: true });
    expect(await readdir(dir)).toEqual(['f']);
  });

  it('asks for closed ranges after the first reply told the size, and not for small files or md5 jobs', async () => {
    const body = randomBytes(24 * MiB);
    const big = await rangedStandIn(body);
    const dir = await tempDir();
    const engine = testEngine(tb, split);
    await engine.run(getTask(big.url, join(dir, 'big')), quietContext());
    expect((await readFile(join(dir, 'big'))).equals(body)).toBe(true);
    expect(big.served.ranges.sort()).toEqual([undefined, `bytes=0-${8 * MiB - 1}`, `bytes=${8 * MiB}-${16 * MiB - 1}`, `bytes=${16 * MiB}-${24 * MiB - 1}`].sort());

    const unchecked = await rangedStandIn(body);
    await engine.run(getTask(unchecked.url, join(dir, 'unchecked'), { checksum: 'none' }), quietContext());
    expect(unchecked.served.ranges.length).toBe(4);
    // md5 cannot be put together from the pieces' digests.
    const md5 = await rangedStandIn(body);
    await failure(engine.run(getTask(md5.url, join(dir, 'md5'), { checksum: 'md5' }), quietContext()));
    expect(md5.served.ranges).toEqual([undefined]);
    const single = await rangedStandIn(body);
    await testEngine(tb).run(getTask(single.url, join(dir, 'single')), quietContext());
    expect(single.served.ranges).toEqual([undefined]); // the default engine of these tests: one stream

    const small = await rangedStandIn(body.subarray(0, 15 * MiB));
    await engine.run(getTask(small.url, join(dir, 'small')), quietContext());
    expect(small.served.ranges).toEqual([undefined]);
  });

  it('splits only for a distant server: one whose first reply took the configured round trip', async () => {
    const body = randomBytes(24 * MiB);
    const engine = testEngine(tb, { download: { streams: 2, minStreamBytes: 8 * MiB, minRoundTripMs: 40 } });
    const dir = await tempDir();
    const near = await rangedStandIn(body);
    await engine.run(getTask(near.url, join(dir, 'near')), quietContext());
    expect(near.served.ranges).toEqual([undefined]);
    const far = await rangedStandIn(body, { delayMs: 60 });
    const res = await engine.run(getTask(far.url, join(dir, 'far')), quietContext());
    expect(res.checksum?.verified).toBe(true);
    expect((await readFile(join(dir, 'far'))).equals(body)).toBe(true);
    expect(far.served.ranges.sort()).toEqual([undefined, `bytes=0-${12 * MiB - 1}`, `bytes=${12 * MiB}-${24 * MiB - 1}`].sort());
  });

  it('goes on as one stream when the server ignores Range', async () => {
    const body = randomBytes(20 * MiB);
    const deaf = await rangedStandIn(body, { ignoreRanges: true });
    const dir = await tempDir();
    const res = await testEngine(tb, split).run(getTask(deaf.url, join(dir, 'f')), quietContext());
    expect(res.checksum?.verified).toBe(true);
    expect((await readFile(join(dir, 'f'))).equals(body)).toBe(true);
    // The first GET, then the first range answered whole: no worker asked.
    expect(deaf.served.ranges).toEqual([undefined, `bytes=0-${10 * MiB - 1}`]);
  });

  it('a range whose connection drops fails the attempt as transient, keeps only gapless bytes, and the retry resumes to the right file', async () => {
    const body = randomBytes(24 * MiB);
    let broken = true;
    const flaky = await rangedStandIn(body, {
      onRange: (start, end, res) => {
        // The second range breaks after 1 MiB, once.
        if (start !== 8 * MiB || !broken) return false;
        broken = false;
        res.writeHead(206, { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${body.length}` });
        res.write(body.subarray(start, start + MiB), () => setTimeout(() => res.socket?.destroy(), 50));
        return true;
      },
    });
    const dir = await tempDir();
    const engine = testEngine(tb, split);
    const err = await failure(engine.run(getTask(flaky.url, join(dir, 'f')), quietContext()));
    expect(err?.code).toBe('TRANSFER_CONNECTION');
    expect(err?.transient).toBe(true);
    // The first range whole and the second's first MiB, if it was written before the drop: never the third range beyond a gap.
    const kept = (await stat(join(dir, 'f.petrel-part'))).size;
    expect(kept).toBeLessThanOrEqual(9 * MiB);
    const part = await readFile(join(dir, 'f.petrel-part'));
    expect(part.equals(body.subarray(0, kept))).toBe(true);

    const res = await engine.run(getTask(flaky.url, join(dir, 'f')), quietContext());
    expect(res.checksum?.verified).toBe(true);
    expect((await readFile(join(dir, 'f'))).equals(body)).toBe(true);
    expect(await readdir(dir)).toEqual(['f']);
  });

  it('cancelling stops every stream: nothing is written after the run has ended', async () => {
    const body = randomBytes(24 * MiB);
    const stalls = await rangedStandIn(body, {
      // Each range sends its first MiB, then stalls; the test cancels meanwhile.
      onRange: (start, end, res) => {
        res.writeHead(206, { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${body.length}` });
        res.write(body.subarray(start, start + MiB));
        return true;
      },
    });
    const dir = await tempDir();
    const abort = new AbortController();
    let done = 0;
    const run = testEngine(tb, split).run(getTask(stalls.url, join(dir, 'f')), {
      signal: abort.signal,
      onProgress: (p) => {
        done = p.bytesDone;
        if (done >= 3 * MiB) abort.abort();
      },
    });
    const err = await failure(run);
    expect(err?.code).toBe('TRANSFER_CANCELLED');
    const size = (await stat(join(dir, 'f.petrel-part'))).size;
    await new Promise((r) => setTimeout(r, 300));
    expect((await stat(join(dir, 'f.petrel-part'))).size).toBe(size);
    // Only the first range's MiB is gapless: the rest is cut off for the resume.
    expect(size).toBeLessThanOrEqual(MiB);
    expect((await readFile(join(dir, 'f.petrel-part'))).equals(body.subarray(0, size))).toBe(true);
  });
});
