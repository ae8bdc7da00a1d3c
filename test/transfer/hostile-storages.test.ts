// Storages that answer wrongly, each a small HTTPS stand-in: a redirect loop, a body shorter or
// longer than its Content-Length, a garbage Digest, a wrong Content-Range on resume. Each ends
// with a clear error or the right bytes, and nothing is written outside the destination.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import type { PetrelError } from '../../src/errors.js';
import { checksumOf } from '../../src/transfer/checksum.js';
import { quietContext, tempDir, testEngine } from '../helpers/engine.js';
import { standIn } from '../helpers/stand-in.js';

const tb = inject('testbed');
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as PetrelError);

describe('hostile storages', () => {
  it('a redirect loop fails after 10 hops, naming it, and leaves nothing', async () => {
    let hops = 0;
    const loop = await standIn(tb, (req, res) => {
      hops++;
      res.writeHead(302, { Location: req.url === '/a' ? '/b' : '/a' }).end();
    });
    const dir = await tempDir();
    const err = await failure(testEngine(tb).run({ kind: 'get', source: `${loop.url}/a`, destination: join(dir, 'f'), token: null, checksum: 'none' }, quietContext()));
    expect(err?.code).toBe('TRANSFER_PROTOCOL');
    expect(err?.message).toContain('too many redirects');
    expect(hops).toBe(11);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a body that ends before its Content-Length fails as transient and keeps what came for the resume', async () => {
    const body = randomBytes(300_000);
    const short = await standIn(tb, (_req, res) => {
      res.writeHead(200, { 'Content-Length': body.length * 2 });
      res.write(body, () => res.socket?.destroy());
    });
    const dir = await tempDir();
    const err = await failure(testEngine(tb).run({ kind: 'get', source: `${short.url}/f`, destination: join(dir, 'f'), token: null, checksum: 'none' }, quietContext()));
    expect(err?.code).toBe('TRANSFER_CONNECTION');
    expect(err?.transient).toBe(true);
    expect(await readdir(dir)).toEqual(['f.petrel-part']);
  });

  it('bytes beyond the Content-Length are never written', async () => {
    const body = randomBytes(5000);
    const long = await standIn(tb, (_req, res) => {
      // Announces 1000 bytes and sends 5000 on a connection that then closes.
      res.socket?.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n'), body]));
    });
    const dir = await tempDir();
    const res = await testEngine(tb).run({ kind: 'get', source: `${long.url}/f`, destination: join(dir, 'f'), token: null, checksum: 'none' }, quietContext());
    expect(res.bytesDone).toBe(1000);
    expect((await readFile(join(dir, 'f'))).equals(body.subarray(0, 1000))).toBe(true);
  });

  it('a garbage Digest is not taken for a verified checksum', async () => {
    const body = randomBytes(2000);
    const garbage = await standIn(tb, (req, res) => {
      if (req.method === 'HEAD') res.writeHead(200, { 'Content-Length': body.length, Digest: 'adler32=not-hex!!, md5' }).end();
      else res.writeHead(200, { 'Content-Length': body.length }).end(body);
    });
    const dir = await tempDir();
    const res = await testEngine(tb).run({ kind: 'get', source: `${garbage.url}/f`, destination: join(dir, 'f'), token: null, checksum: 'adler32' }, quietContext());
    expect(res.checksum).toEqual({ algorithm: 'adler32', value: checksumOf('adler32', body), verified: false });
  });

  it('a wrong Digest fails the download and removes the copy', async () => {
    const body = randomBytes(2000);
    const wrong = await standIn(tb, (req, res) => {
      if (req.method === 'HEAD') res.writeHead(200, { 'Content-Length': body.length, Digest: 'adler32=00000001' }).end();
      else res.writeHead(200, { 'Content-Length': body.length }).end(body);
    });
    const dir = await tempDir();
    const err = await failure(testEngine(tb).run({ kind: 'get', source: `${wrong.url}/f`, destination: join(dir, 'f'), token: null, checksum: 'adler32' }, quietContext()));
    expect(err?.code).toBe('TRANSFER_CHECKSUM_MISMATCH');
    expect(await readdir(dir)).toEqual([]);
  });

  it('a resume answered with the wrong Content-Range starts over and gets the right bytes', async () => {
    const body = randomBytes(400_000);
    const ranges: (string | undefined)[] = [];
    const liar = await standIn(tb, (req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'Content-Length': body.length, Digest: `adler32=${checksumOf('adler32', body)}` }).end();
        return;
      }
      ranges.push(req.headers.range);
      // Whatever was asked, a 206 for bytes from 10 on.
      if (req.headers.range) res.writeHead(206, { 'Content-Range': `bytes 10-${body.length - 1}/${body.length}`, 'Content-Length': body.length - 10 }).end(body.subarray(10));
      else res.writeHead(200, { 'Content-Length': body.length }).end(body);
    });
    const dir = await tempDir();
    await writeFile(join(dir, 'f.petrel-part'), body.subarray(0, 100_000));
    const res = await testEngine(tb).run({ kind: 'get', source: `${liar.url}/f`, destination: join(dir, 'f'), token: null, checksum: 'adler32' }, quietContext());
    expect(ranges).toEqual([`bytes=100000-${body.length - 1}`, undefined]);
    expect(res.checksum?.verified).toBe(true);
    expect((await readFile(join(dir, 'f'))).equals(body)).toBe(true);
  });
});
