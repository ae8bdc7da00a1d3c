// The HTTP engine against the XRootD test bed, plus tiny HTTPS stand-ins for what the bed's
// XRootD does not do: redirecting (GET and COPY), 429/503 with Retry-After, a stalled COPY.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, statfsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { PetrelError } from '../../src/errors.js';
import { checksumOf } from '../../src/transfer/checksum.js';
import { createHttpEngine } from '../../src/transfer/engine.js';
import { bodyText, createHttpClient, send } from '../../src/transfer/http.js';
import type { TransferTask } from '../../src/transfer/task.js';
import { freePort, mintToken, writeDataFile } from '../testbed/index.js';
import { fillDisk, smallDisk as makeSmallDisk, tempDir as makeTempDir, testEngine, quietContext } from '../helpers/engine.js';
import { standIn as standInServer, type Handler } from '../helpers/stand-in.js';

const tb = inject('testbed');
const { a } = tb.servers;
const ctx = quietContext;
const tempDir = () => makeTempDir('petrel-engine-');
const smallDisk = (size: number) => makeSmallDisk(size, 'petrel-engine-');
const engine = () => testEngine(tb);
const standIn = (handler: Handler) => standInServer(tb, handler);

describe('HTTP engine', () => {
  it.each(['adler32', 'md5', 'crc32c'] as const)('verifies %s against the digest XRootD reports', async (algo) => {
    const data = randomBytes(3 << 20);
    const path = `/sum-${algo}-${randomUUID().slice(0, 6)}.bin`;
    await writeDataFile(a, path, data);
    const dir = await tempDir();
    const task: TransferTask = { kind: 'get', source: `${a.url}${path}`, destination: join(dir, 'f'), token: await mintToken(tb, { scope: 'storage.read:/' }), checksum: algo };
    const res = await engine().run(task, ctx());
    expect(res.checksum).toEqual({ algorithm: algo, value: checksumOf(algo, data), verified: true });
    expect((await readFile(join(dir, 'f'))).equals(data)).toBe(true);
  });

  it('follows a redirect to another host without sending it the token, and keeps it on the same origin', async () => {
    const seen: { path: string; auth: string | undefined }[] = [];
    const other = await standIn((req, res) => {
      seen.push({ path: `other${req.url}`, auth: req.headers.authorization });
      res.end('from the other host');
    });
    const first = await standIn((req, res) => {
      seen.push({ path: `first${req.url}`, auth: req.headers.authorization });
      if (req.url === '/same') res.writeHead(302, { Location: '/here' }).end();
      else if (req.url === '/away') res.writeHead(307, { Location: `${other.url}/there` }).end();
      else res.end('from the first host');
    });
    const dir = await tempDir();
    const token = 'not-a-real-token';
    const e = engine();
    await e.run({ kind: 'get', source: `${first.url}/same`, destination: join(dir, 'same'), token, checksum: 'none' }, ctx());
    await e.run({ kind: 'get', source: `${first.url}/away`, destination: join(dir, 'away'), token, checksum: 'none' }, ctx());
    expect(seen).toEqual([
      { path: 'first/same', auth: `Bearer ${token}` },
      { path: 'first/here', auth: `Bearer ${token}` },
      { path: 'first/away', auth: `Bearer ${token}` },
      { path: 'other/there', auth: undefined },
    ]);
    expect(await readFile(join(dir, 'away'), 'utf8')).toBe('from the other host');
  });

  it('marks a download unverified, not failed, when the server reports no digest', async () => {
    const plain = await standIn((_req, res) => res.end('no digest here'));
    const dir = await tempDir();
    const res = await engine().run({ kind: 'get', source: `${plain.url}/f`, destination: join(dir, 'f'), token: null, checksum: 'adler32' }, ctx());
    expect(res.checksum).toEqual({ algorithm: 'adler32', value: checksumOf('adler32', Buffer.from('no digest here')), verified: false });
  });


  it('reuses its connections across verified downloads: the digest HEAD does not cost a TLS handshake per file', async () => {
    const body = Buffer.from('small file');
    let connections = 0;
    const server = await standIn((req, res) => {
      if (req.method === 'HEAD') res.writeHead(200, { 'Content-Length': body.length, Digest: `adler32=${checksumOf('adler32', body)}` }).end();
      else res.end(body);
    });
    server.server.on('secureConnection', () => connections++);
    const dir = await tempDir();
    const e = engine();
    for (let i = 0; i < 20; i++) {
      const res = await e.run({ kind: 'get', source: `${server.url}/f${i}`, destination: join(dir, `f${i}`), token: null, checksum: 'adler32' }, ctx());
      expect(res.checksum?.verified).toBe(true);
    }
    // One connection for the GETs and one for the HEADs (two HTTP stacks); before, one per HEAD.
    expect(connections).toBeLessThanOrEqual(2);
  });
  it('against XRootD, checksum on: a missing file fails as not found and a forbidden one as denied, each for good', async () => {
    const dir = await tempDir();
    const e = engine();
    const read = await mintToken(tb, { scope: 'storage.read:/' });
    const missing = (await e.run({ kind: 'get', source: `${a.url}/missing-${randomUUID()}`, destination: join(dir, 'm'), token: read, checksum: 'adler32' }, ctx()).catch((x: unknown) => x)) as PetrelError;
    expect(missing.code).toBe('TRANSFER_NOT_FOUND');
    expect(missing.transient).toBe(false);
    const path = `/forbidden-${randomUUID().slice(0, 6)}.bin`;
    await writeDataFile(a, path, 1000);
    const elsewhere = await mintToken(tb, { scope: 'storage.read:/elsewhere' });
    const denied = (await e.run({ kind: 'get', source: `${a.url}${path}`, destination: join(dir, 'd'), token: elsewhere, checksum: 'adler32' }, ctx()).catch((x: unknown) => x)) as PetrelError;
    expect(denied.code).toBe('TRANSFER_DENIED');
    expect(denied.transient).toBe(false);
    // Nothing is left beside the destinations.
    expect(await readdir(dir)).toEqual([]);
  });

  it('leaves no part file behind when the storage cannot be reached', async () => {
    const port = await freePort();
    const dir = await tempDir();
    const err = (await engine().run({ kind: 'get', source: `https://localhost:${port}/f`, destination: join(dir, 'sub', 'f'), token: null, checksum: 'adler32' }, ctx()).catch((x: unknown) => x)) as PetrelError;
    expect(err.code).toBe('TRANSFER_CONNECTION');
    expect(err.transient).toBe(true);
    expect(await readdir(join(dir, 'sub'))).toEqual([]);
  });

  it('gives up on a server that takes the connection but never answers the TLS handshake, as a transient timeout', async () => {
    // Reads what comes (the TLS hello) and never answers.
    const silent = createNetServer((socket) => socket.on('error', () => undefined).resume());
    await new Promise<void>((r) => silent.listen(0, 'localhost', r));
    onTestFinished(() => new Promise<void>((r) => silent.close(() => r())));
    const e = createHttpEngine({ caFile: tb.caFile, idleTimeoutMs: 10_000, connectTimeoutMs: 300 });
    onTestFinished(() => e.close());
    const dir = await tempDir();
    const started = Date.now();
    const port = (silent.address() as AddressInfo).port;
    const err = (await e.run({ kind: 'get', source: `https://localhost:${port}/f`, destination: join(dir, 'f'), token: null, checksum: 'none' }, ctx()).catch((x: unknown) => x)) as PetrelError;
    expect(err.code).toBe('TRANSFER_TIMEOUT');
    expect(err.transient).toBe(true);
    expect(err.message).toContain(`localhost:${port}`);
    // The connect timeout ended it, not the 10 s idle timeout.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await readdir(dir)).toEqual([]);
  });

  it('fails a reply that stops in the middle after the idle timeout, as transient, keeping what arrived for a resume', async () => {
    const stalls = await standIn((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(4 << 20) });
      res.write(Buffer.alloc(4096, 1));
    });
    const e = createHttpEngine({ caFile: tb.caFile, idleTimeoutMs: 400 });
    onTestFinished(() => e.close());
    const dir = await tempDir();
    const err = (await e.run({ kind: 'get', source: `${stalls.url}/f`, destination: join(dir, 'f'), token: null, checksum: 'none' }, ctx()).catch((x: unknown) => x)) as PetrelError;
    stalls.server.closeAllConnections();
    expect(err.code).toBe('TRANSFER_TIMEOUT');
    expect(err.transient).toBe(true);
    expect((await readFile(join(dir, 'f.petrel-part'))).length).toBe(4096);
  });

  it('keeps an unused connection no longer than the server says it will keep it (Keep-Alive: timeout), and at most 30 s', async () => {
    const hinted = await standIn((_req, res) => res.writeHead(200, { 'Keep-Alive': 'timeout=3', 'Content-Length': '2' }).end('ok'));
    const silent = await standIn((_req, res) => res.writeHead(200, { 'Content-Length': '2' }).end('ok'));
    silent.server.keepAliveTimeout = 0; // no Keep-Alive header of its own
    for (const [server, idleMs] of [[hinted, 2_000], [silent, 30_000]] as const) {
      const client = createHttpClient({ caFile: tb.caFile });
      onTestFinished(() => client.close());
      const res = await send(client, { method: 'GET', url: new URL(`${server.url}/x`) });
      expect(await bodyText(res.body)).toBe('ok');
      await new Promise((r) => setImmediate(r));
      const pooled = Object.values(client.pooled['https:'].freeSockets).flat();
      expect(pooled.map((socket) => socket?.timeout)).toEqual([idleMs]);
    }
  });

  it('treats 429 and 503 as transient and carries the server’s Retry-After', async () => {
    const busy = await standIn((req, res) => {
      if (req.url === '/429') res.writeHead(429, { 'Retry-After': '7' }).end('slow down');
      else res.writeHead(503, { 'Retry-After': '2' }).end('maintenance');
    });
    const dir = await tempDir();
    for (const [path, after] of [['/429', 7000], ['/503', 2000]] as const) {
      const err = await engine()
        .run({ kind: 'get', source: `${busy.url}${path}`, destination: join(dir, 'x'), token: null, checksum: 'none' }, ctx())
        .catch((e: unknown) => e as PetrelError);
      expect(err).toBeInstanceOf(PetrelError);
      expect((err as PetrelError).transient).toBe(true);
      expect((err as PetrelError).retryAfterMs).toBe(after);
    }
  });

  it('fails for good, naming PETREL_CA_FILE, when the server certificate is not trusted', async () => {
    const e = createHttpEngine({ idleTimeoutMs: 5_000 });
    onTestFinished(() => e.close());
    const dir = await tempDir();
    const err = (await e.run({ kind: 'get', source: `${a.url}/x`, destination: join(dir, 'x'), token: null, checksum: 'none' }, ctx()).catch((x: unknown) => x)) as PetrelError;
    expect(err.code).toBe('TRANSFER_CONNECTION');
    expect(err.transient).toBe(false);
    expect(err.hint).toContain('PETREL_CA_FILE');
  });

  it('uploads with Content-Length and checks the digest the server computes', async () => {
    const data = randomBytes((1 << 20) + 17);
    const dir = await tempDir();
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'up.bin'), data);
    const token = await mintToken(tb, { scope: 'storage.read:/ storage.create:/ storage.modify:/' });
    const dest = `${a.url}/up-${randomUUID().slice(0, 6)}/up.bin`;
    const res = await engine().run({ kind: 'put', source: join(dir, 'up.bin'), destination: dest, token, checksum: 'adler32' }, ctx());
    expect(res).toMatchObject({ bytesDone: data.length, checksum: { verified: true, value: checksumOf('adler32', data) } });
  });

  it('sends an upload again from its start when the storage redirects it, and the bytes arrive whole', async () => {
    const data = randomBytes((1 << 20) + 4321); // more than the upload's buffers hold at once
    const dir = await tempDir();
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'up.bin'), data);
    const received: { path: string; bytes: Buffer }[] = [];
    const server = await standIn((req, res) => {
      if (req.url === '/door') {
        // A door that redirects before reading the body, as dCache does.
        res.writeHead(307, { Location: '/pool/up.bin' }).end();
        req.resume();
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', bytes: Buffer.concat(chunks) });
        res.writeHead(201).end();
      });
    });
    const res = await engine().run({ kind: 'put', source: join(dir, 'up.bin'), destination: `${server.url}/door`, token: null, checksum: 'none' }, ctx());
    expect(res.bytesDone).toBe(data.length);
    expect(received.map((r) => r.path)).toEqual(['/pool/up.bin']);
    expect(received[0]?.bytes.equals(data)).toBe(true);
  });

  // Mounting a small tmpfs needs root, which CI has.
  it.runIf(process.getuid?.() === 0)('fails at once on a full disk, removing the partial file', async () => {
    const dir = await smallDisk(2 << 20);
    const path = `/big-${randomUUID().slice(0, 6)}.bin`;
    await writeDataFile(a, path, 8 << 20);
    const task: TransferTask = { kind: 'get', source: `${a.url}${path}`, destination: join(dir, 'big.bin'), token: await mintToken(tb, { scope: 'storage.read:/' }), checksum: 'adler32' };
    const e = engine();
    const err = (await e.run(task, ctx()).catch((x: unknown) => x)) as PetrelError;
    expect(err.code).toBe('TRANSFER_DISK_FULL');
    expect(err.transient).toBe(false);
    expect(err.hint).toContain('free some space');
    await e.discard(task);
    expect(existsSync(join(dir, 'big.bin.petrel-part'))).toBe(false);
  });

  // A stand-in, because no XRootD here pauses mid-body on cue: the disk fills (another writer)
  // after the download has started, with room enough at its start.
  it.runIf(process.getuid?.() === 0)('fails a download whose disk fills while it runs, before the disk is full', async () => {
    const dir = await smallDisk(4 << 20);
    const size = 2 << 20;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const { url } = await standIn((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(size), 'Content-Type': 'application/octet-stream' });
      res.write(Buffer.alloc(256 << 10, 1));
      void released.then(() => {
        for (let sent = 256 << 10; sent < size; sent += 64 << 10) res.write(Buffer.alloc(64 << 10, 2));
        res.end();
      });
    });
    const part = join(dir, 'f.bin.petrel-part');
    const task: TransferTask = { kind: 'get', source: `${url}/f.bin`, destination: join(dir, 'f.bin'), token: null, checksum: 'none' };
    const e = engine();
    const run = e.run(task, ctx()).catch((x: unknown) => x as PetrelError);
    await expect.poll(() => (existsSync(part) ? statSync(part).size : 0), { timeout: 10_000 }).toBeGreaterThanOrEqual(256 << 10);
    fillDisk(dir, 100 << 10);
    release();
    const err = await run;
    expect(err).toBeInstanceOf(PetrelError);
    expect((err as PetrelError).code).toBe('TRANSFER_DISK_FULL');
    // Petrel's own look at the free space stopped it, not the disk refusing a write.
    expect((err as PetrelError).message).toMatch(/not enough space for .*kept in reserve/);
    expect(statfsSync(dir).bavail).toBeGreaterThan(0);
    await e.discard(task);
    expect(existsSync(part)).toBe(false);
  });
});

// What no XRootD here can be made to do on cue: a COPY reply that stalls, and one redirected.
describe('COPY against stand-ins', () => {
  it('a copy whose server sends no marker for the marker timeout is aborted as transient', async () => {
    const deleted: string[] = [];
    const { url } = await standIn((req, res) => {
      if (req.method === 'DELETE') {
        deleted.push(req.url ?? '');
        res.writeHead(204).end();
        return;
      }
      res.writeHead(201, { 'Content-Type': 'text/plain' });
      res.write('Perf Marker\nStripe Index: 0\nStripe Bytes Transferred: 0\nEnd\n');
      // ...and then nothing, with the connection held open.
    });
    const e = createHttpEngine({ caFile: tb.caFile, idleTimeoutMs: 10_000, copyMarkerTimeoutMs: 500 });
    onTestFinished(() => e.close());
    const task: TransferTask = { kind: 'copy', source: `${a.url}/x`, destination: `${url}/y`, token: 'dst-token', sourceToken: 'src-token', checksum: 'none' };
    const started = Date.now();
    const err = await e.run(task, ctx()).then(() => undefined, (x: unknown) => x as PetrelError);
    expect(err?.code).toBe('TRANSFER_INTERRUPTED');
    expect(err?.transient).toBe(true);
    expect(err?.message).toContain('no progress marker for 1 s');
    expect(Date.now() - started).toBeLessThan(5_000);
    // What the stalled copy may have left is removed, so the retry starts clean.
    expect(deleted).toEqual(['/y']);
  });

  it('a cut copy whose next attempt finds the destination down still replaces its own leftover on the third', async () => {
    // Attempt 1 is cut after the server took the COPY (its DELETE of the leftover fails too);
    // attempt 2 meets a server not yet back (503); attempt 3 must still send Overwrite: T.
    const copies: (string | undefined)[] = [];
    const { url } = await standIn((req, res) => {
      if (req.method !== 'COPY') {
        res.writeHead(503).end('restarting');
        return;
      }
      copies.push(req.headers.overwrite as string | undefined);
      if (copies.length === 1) {
        res.writeHead(202, { 'Content-Type': 'text/plain' });
        res.write('Perf Marker\nStripe Index: 0\nStripe Bytes Transferred: 0\nEnd\n');
        setTimeout(() => res.socket?.destroy(), 50);
      } else if (copies.length === 2) {
        res.writeHead(503).end('restarting');
      } else {
        res.writeHead(201, { 'Content-Type': 'text/plain' }).end('success: Created');
      }
    });
    const e = engine();
    const task: TransferTask = { kind: 'copy', source: `${a.url}/x`, destination: `${url}/y`, token: 'dst-token', sourceToken: 'src-token', checksum: 'none' };
    let previousError: string | null = null;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const outcome: string | PetrelError = await e.run({ ...task, previousError, previousBytes: 0 }, ctx()).then(
        () => 'done',
        (x: unknown) => x as PetrelError,
      );
      if (attempt < 3) {
        expect(outcome, `attempt ${attempt}`).toBeInstanceOf(PetrelError);
        expect((outcome as PetrelError).transient).toBe(true);
        previousError = (outcome as PetrelError).code;
      } else {
        expect(outcome).toBe('done');
      }
    }
    expect(copies).toEqual(['F', 'T', 'T']);
  });

  // As XRootD does (testbed.md): the COPY creates the destination before the server answers,
  // and `Overwrite: F` onto an existing file is refused with 412.
  async function creatingDestination(opts: { cutFirst: boolean; leftover?: Buffer; initial?: Buffer }) {
    const seen: string[] = [];
    let file = opts.initial;
    const { url } = await standIn((req, res) => {
      seen.push(req.method === 'COPY' ? `COPY ${String(req.headers.overwrite)}` : String(req.method));
      if (req.method === 'HEAD') {
        if (file) res.writeHead(200, { 'Content-Length': String(file.length) }).end();
        else res.writeHead(404).end();
      } else if (req.method === 'DELETE') {
        file = undefined;
        res.writeHead(204).end();
      } else if (file && req.headers.overwrite === 'F') {
        res.writeHead(412, { 'Content-Type': 'text/plain' }).end('Unable to create /y; file exists');
      } else if (opts.cutFirst && seen.length === 1) {
        file = opts.leftover;
        res.socket?.destroy(); // killed before it answered
      } else {
        file = Buffer.from('copied');
        res.writeHead(201, { 'Content-Type': 'text/plain' }).end('Perf Marker\nStripe Index: 0\nStripe Bytes Transferred: 6\nEnd\nsuccess: Created');
      }
    });
    return { seen, url, holds: () => file?.toString() };
  }

  it('a copy cut before the server answered: the retry removes the empty file it left and copies', async () => {
    const dest = await creatingDestination({ cutFirst: true, leftover: Buffer.alloc(0) });
    const e = engine();
    const task: TransferTask = { kind: 'copy', source: `${a.url}/x`, destination: `${dest.url}/y`, token: 'dst-token', sourceToken: 'src-token', checksum: 'none' };
    const first = (await e.run(task, ctx()).catch((x: unknown) => x)) as PetrelError;
    expect(first.transient).toBe(true);
    const second = await e.run({ ...task, previousError: first.code, previousBytes: 0 }, ctx());
    expect(second.bytesDone).toBe(6);
    expect(dest.holds()).toBe('copied');
    expect(dest.seen.slice(0, 5)).toEqual(['COPY F', 'COPY F', 'HEAD', 'DELETE', 'COPY F']);
  });

  it('a retry meeting a file with data at the destination, or a first attempt meeting an empty one, fails (412) and leaves it', async () => {
    const full = await creatingDestination({ cutFirst: true, leftover: Buffer.from('not ours') });
    const e = engine();
    const task = (url: string): TransferTask => ({ kind: 'copy', source: `${a.url}/x`, destination: `${url}/y`, token: 'dst-token', sourceToken: 'src-token', checksum: 'none' });
    const cut = (await e.run(task(full.url), ctx()).catch((x: unknown) => x)) as PetrelError;
    const err = (await e.run({ ...task(full.url), previousError: cut.code, previousBytes: 0 }, ctx()).catch((x: unknown) => x)) as PetrelError;
    expect(err.code).toBe('TRANSFER_REFUSED');
    expect(err.hint).toContain('--overwrite');
    expect(full.holds()).toBe('not ours');
    expect(full.seen).not.toContain('DELETE');

    const empty = await creatingDestination({ cutFirst: false, initial: Buffer.alloc(0) });
    const refused = (await e.run(task(empty.url), ctx()).catch((x: unknown) => x)) as PetrelError;
    expect(refused.code).toBe('TRANSFER_REFUSED');
    expect(empty.holds()).toBe('');
    expect(empty.seen).toEqual(['COPY F']);
  });

  it('fails a streamed copy whose destination redirects the PUT, as transient, without sending the source twice', async () => {
    const data = randomBytes(256 << 10);
    const source = await standIn((_req, res) => res.writeHead(200, { 'Content-Length': String(data.length) }).end(data));
    const seen: string[] = [];
    const destination = await standIn((req, res) => {
      if (req.method === 'COPY') return void res.writeHead(405).end('COPY not allowed');
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      if (req.url === '/door/y' && req.method === 'PUT') res.writeHead(307, { Location: '/pool/y' }).end();
      else res.writeHead(req.method === 'DELETE' ? 204 : 201).end();
    });
    const task: TransferTask = { kind: 'copy', source: `${source.url}/x`, destination: `${destination.url}/door/y`, token: null, checksum: 'none', fallback: 'streamed' };
    const err = (await engine().run(task, ctx()).catch((e: unknown) => e)) as PetrelError;
    expect(err).toBeInstanceOf(PetrelError);
    expect(err.message).toContain('redirected the PUT of a streamed copy');
    expect(err.transient).toBe(true);
    // No second PUT gets the source's bytes; what the first may have left is deleted.
    expect(seen.filter((r) => r.startsWith('PUT'))).toEqual(['PUT /door/y']);
    expect(seen).toContain('DELETE /door/y');
  });

  it('follows a COPY redirect on the same origin with the same headers, both tokens included', async () => {
    const seen: { path: string; auth?: string | undefined; tha?: string | undefined; source?: string | undefined; credential?: string | undefined }[] = [];
    const { url } = await standIn((req, res) => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization, tha: req.headers.transferheaderauthorization as string | undefined, source: req.headers.source as string | undefined, credential: req.headers.credential as string | undefined });
      if (req.url === '/door/y') {
        res.writeHead(307, { Location: '/pool/y' }).end();
        return;
      }
      res.writeHead(201, { 'Content-Type': 'text/plain' });
      res.end('Perf Marker\nStripe Index: 0\nStripe Bytes Transferred: 10\nEnd\nsuccess: Created');
    });
    const task: TransferTask = { kind: 'copy', source: `${a.url}/x`, destination: `${url}/door/y`, token: 'dst-token', sourceToken: 'src-token', checksum: 'none' };
    const res = await engine().run(task, ctx());
    expect(res.bytesDone).toBeGreaterThanOrEqual(0);
    expect(seen.map((s) => s.path).slice(0, 2)).toEqual(['/door/y', '/pool/y']);
    for (const s of seen.slice(0, 2)) {
      expect(s).toMatchObject({ auth: 'Bearer dst-token', tha: 'Bearer src-token', source: `${a.url}/x`, credential: 'none' });
    }
  });
});
