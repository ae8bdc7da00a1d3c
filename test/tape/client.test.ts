// The Tape REST client (src/tape) against the stand-in in each server's dialect.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { PetrelError } from '../../src/errors.js';
import { createTapeClient, parseDiskLifetime, storagePath, type FileStage, type TapeClient, type TapeEndpoint } from '../../src/tape/index.js';
import { createHttpClient } from '../../src/transfer/index.js';
import { startTapeServer, type TapeDialect } from '../helpers/tape-server.js';
import { mintToken } from '../testbed/index.js';

const tb = inject('testbed');
const http = createHttpClient({ caFile: tb.caFile });
afterAll(() => http.close());

const stageToken = (path = '/tape') => mintToken(tb, { scope: `storage.stage:${path}` });

async function untilSettled(tape: TapeClient, endpoint: TapeEndpoint, id: string, paths: string[], token: string): Promise<FileStage[]> {
  for (let i = 0; i < 100; i++) {
    const files = await tape.poll(endpoint, id, paths, token);
    if (files.every((f) => f.status !== 'pending')) return files;
    await sleep(50);
  }
  throw new Error('the recall did not settle');
}

async function thrown(p: Promise<unknown>): Promise<PetrelError> {
  try {
    await p;
  } catch (e) {
    return e as PetrelError;
  }
  throw new Error('no error');
}

describe.each<TapeDialect>(['dcache', 'storm', 'eos'])('the %s dialect', (dialect) => {
  it('discovers the API where the document says, stages, and reads each file back as on disk or failed, matched by path', async () => {
    const server = await startTapeServer(tb, { dialect });
    for (const n of [1, 2, 3]) server.addFile(`/tape/run/f${n}`, { delayMs: 100 * n });
    server.addFile('/tape/run/broken', { delayMs: 50, fail: 'cartridge unreadable' });
    const tape = createTapeClient({ http });
    const token = await stageToken();
    const endpoint = await tape.endpointFor(new URL(`${server.url}/tape/run/f1`), token);
    expect(endpoint.uri).toBe(new URL(server.uri, server.url).href);
    const paths = ['/tape/run/f1', '/tape/run/f2', '/tape/run/f3', '/tape/run/broken'];
    const [made] = await tape.stage(endpoint, paths.map((path) => ({ path })), token);
    const files = await untilSettled(tape, endpoint, made!.requestId, paths, token);
    expect(files.map((f) => [f.path, f.status])).toEqual([
      ['/tape/run/f1', 'on-disk'],
      ['/tape/run/f2', 'on-disk'],
      ['/tape/run/f3', 'on-disk'],
      ['/tape/run/broken', 'failed'],
    ]);
    if (dialect !== 'storm') expect(files[3]?.error).toContain('cartridge unreadable');
    expect(server.stats.stageRequests).toBe(1);
  });

  it('says where files are (archiveinfo), and an error for one that does not exist', async () => {
    const server = await startTapeServer(tb, { dialect });
    server.addFile('/tape/a', {});
    server.addFile('/tape/b', { onDisk: true });
    const tape = createTapeClient({ http });
    const token = await stageToken();
    const endpoint = await tape.endpointFor(new URL(server.url), token);
    const info = await tape.archiveInfo(endpoint, ['/tape/a', '/tape/b', '/tape/none'], token);
    expect(info[0]).toEqual({ path: '/tape/a', locality: 'TAPE' });
    expect(info[1]).toEqual({ path: '/tape/b', locality: 'DISK_AND_TAPE' });
    expect(info[2]?.locality).toBeUndefined();
    expect(info[2]?.error).toBeTruthy();
  });

  it('cancels the files named, and a forgotten request polls as not found', async () => {
    const server = await startTapeServer(tb, { dialect });
    server.addFile('/tape/slow1', { delayMs: 60_000 });
    server.addFile('/tape/slow2', { delayMs: 60_000 });
    const tape = createTapeClient({ http });
    const token = await stageToken();
    const endpoint = await tape.endpointFor(new URL(server.url), token);
    const [made] = await tape.stage(endpoint, [{ path: '/tape/slow1' }, { path: '/tape/slow2' }], token);
    await tape.cancel(endpoint, made!.requestId, ['/tape/slow1'], token);
    expect(server.stats.cancelledPaths).toEqual(['/tape/slow1']);
    const after = await tape.poll(endpoint, made!.requestId, ['/tape/slow1', '/tape/slow2'], token);
    expect(after[1]?.status).toBe('pending');
    if (dialect !== 'eos') expect(after[0]?.status).toBe('cancelled');
    server.forget(made!.requestId);
    expect((await thrown(tape.poll(endpoint, made!.requestId, ['/tape/slow2'], token))).code).toBe('TRANSFER_NOT_FOUND');
  });
});

describe('the tape client', () => {
  it('splits a request the storage finds too large (dCache: 413 above 500 files) and sends every file once', async () => {
    const server = await startTapeServer(tb, { dialect: 'dcache' });
    const paths = Array.from({ length: 700 }, (_, i) => `/tape/many/f${i}`);
    for (const p of paths) server.addFile(p, { content: 1 });
    const tape = createTapeClient({ http, maxFilesPerRequest: 1000 });
    const token = await stageToken();
    const endpoint = await tape.endpointFor(new URL(server.url), token);
    const made = await tape.stage(endpoint, paths.map((path) => ({ path })), token);
    expect(made.map((m) => m.files.length).reduce((a, b) => a + b)).toBe(700);
    expect(made.every((m) => m.files.length <= 500)).toBe(true);
    expect(server.stats.requests.flatMap((r) => r.files).sort()).toEqual([...paths].sort());
    expect(paths.every((p) => server.timesStaged(p) === 1)).toBe(true);
  });

  it('a storage without a discovery document offers no tape API, and says so', async () => {
    const server = await startTapeServer(tb, { discovery: false });
    const tape = createTapeClient({ http });
    const e = await thrown(tape.endpointFor(new URL(`${server.url}/tape/x`), await stageToken()));
    expect(e.code).toBe('TAPE_UNSUPPORTED');
    expect(e.message).toContain('offers no tape API');
  });

  it('trusts a discovery document for its max-age: one discovery call for many lookups', async () => {
    const server = await startTapeServer(tb, { dialect: 'storm', discoveryMaxAge: 21_600 });
    const tape = createTapeClient({ http });
    const token = await stageToken();
    for (let i = 0; i < 5; i++) await tape.endpointFor(new URL(`${server.url}/tape/f${i}`), token);
    expect(server.stats.discovery).toBe(1);
  });

  it('a token without storage.stage is refused with the storage words, as denied', async () => {
    const server = await startTapeServer(tb, { dialect: 'dcache' });
    server.addFile('/tape/a', {});
    const tape = createTapeClient({ http });
    const readOnly = await mintToken(tb, { scope: 'storage.read:/tape' });
    const endpoint = await tape.endpointFor(new URL(server.url), readOnly);
    const e = await thrown(tape.stage(endpoint, [{ path: '/tape/a' }], readOnly));
    expect(e.code).toBe('TRANSFER_DENIED');
  });

  it('names files by their decoded path with repeated slashes collapsed', () => {
    expect(storagePath(new URL('https://h:1/tape//run/a%20b.root'))).toBe('/tape/run/a b.root');
  });

  it('takes disk lifetimes dCache accepts, in shorthand or ISO 8601, and refuses weeks and months', () => {
    expect(parseDiskLifetime('6h')).toBe('PT6H');
    expect(parseDiskLifetime('2d')).toBe('P2D');
    expect(parseDiskLifetime('P1DT12H')).toBe('P1DT12H');
    expect(parseDiskLifetime('pt30m')).toBe('PT30M');
    for (const bad of ['P1W', 'P1M', 'P1Y', 'PT', 'P', 'soon', '0h']) expect(() => parseDiskLifetime(bad), bad).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});
