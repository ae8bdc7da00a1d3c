// The tape stand-in (test/helpers/tape-server.ts) answers as tape.md says each server does: these
// tests hold it to that, so that tests of Petrel's tape recall can trust it.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { checksumOf } from '../../src/transfer/checksum.js';
import { quietContext, tempDir, testEngine } from '../helpers/engine.js';
import { startTapeServer, type TapeServer } from '../helpers/tape-server.js';
import { mintToken, type TokenClaims } from '../testbed/index.js';
import { jsonOrUndefined } from '../helpers/files.js';

const tb = inject('testbed');
const dispatcher = new Agent({ connect: { ca: readFileSync(tb.caFile) } });
afterAll(() => dispatcher.close());

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown> & Array<Record<string, unknown>>;
}

async function call(url: string, o: { method?: 'GET' | 'HEAD' | 'POST' | 'DELETE'; token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const res = await request(url, {
    dispatcher,
    method: o.method ?? (o.body === undefined ? 'GET' : 'POST'),
    headers: { ...(o.token ? { Authorization: `Bearer ${o.token}` } : {}), ...(o.body === undefined ? {} : { 'Content-Type': 'application/json' }), ...o.headers },
    ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
  });
  const text = await res.body.text();
  const json = jsonOrUndefined(text);
  return { status: res.statusCode, headers: res.headers, text, json: json as Answer['json'] };
}

const token = (scope = 'storage.stage:/tape', claims: Omit<TokenClaims, 'scope'> = {}) => mintToken(tb, { ...claims, scope });
const stage = async (s: TapeServer, paths: string[], t?: string) => call(`${s.uri}/stage`, { token: t ?? (await token()), body: { files: paths.map((path) => ({ path })) } });
const stageId = async (s: TapeServer, paths: string[]) => (await stage(s, paths)).json.requestId as string;
const poll = async (s: TapeServer, id: string) => (await call(`${s.uri}/stage/${id}`, { token: await token() })).json;
type FileView = { path: string; state?: string } & Record<string, unknown>;
const byPath = (files: unknown) => [...(files as FileView[])].sort((a, b) => a.path.localeCompare(b.path));

describe('the WLCG tape REST API stand-in', () => {
  it('discovery announces each dialect\'s uri, with Cache-Control when asked, and answers 404 without a tape API', async () => {
    const dcache = await startTapeServer(tb);
    const d = await call(`${dcache.url}/.well-known/wlcg-tape-rest-api`);
    expect(d.json).toMatchObject({ sitename: expect.any(String), endpoints: [{ uri: `${dcache.url}/api/v1/tape`, version: 'v1', metadata: {} }] });
    expect(d.headers['cache-control']).toBeUndefined();
    const storm = await startTapeServer(tb, { dialect: 'storm', discoveryMaxAge: 21600 });
    const s = await call(`${storm.url}/.well-known/wlcg-tape-rest-api`);
    expect(s.json.endpoints).toEqual([{ uri: `${storm.url}/api/v1`, version: 'v1', metadata: {} }]);
    expect(s.headers['cache-control']).toBe('max-age=21600');
    const none = await startTapeServer(tb, { dialect: 'eos', discovery: false });
    expect((await call(`${none.url}/.well-known/wlcg-tape-rest-api`)).status).toBe(404);
  });

  it('dcache: absolute Location, `state`, milliseconds, per-file errors, completedAt once every file has ended', async () => {
    const s = await startTapeServer(tb);
    s.addFile('/tape/slow', { delayMs: 300 });
    s.addFile('/tape/ready', { onDisk: true });
    s.addFile('/tape/broken', { fail: 'tape drive on fire' });
    const res = await call(`${s.uri}/stage`, { token: await token(), body: { files: [{ path: '/tape/slow', diskLifetime: 'PT1H' }, { path: '/tape/ready' }, { path: '/tape/broken' }, { path: '/tape/nothing' }] } });
    expect(res.status).toBe(201);
    const id = res.json.requestId as string;
    expect(res.headers.location).toBe(`${s.uri}/stage/${id}`);
    const first = await poll(s, id);
    expect(first.createdAt).toBeGreaterThan(1e12);
    expect(first.completedAt).toBeUndefined();
    expect(byPath(first.files)).toMatchObject([
      { path: '/tape/broken', state: 'FAILED', error: 'tape drive on fire' },
      { path: '/tape/nothing', state: 'FAILED', error: expect.any(String) },
      { path: '/tape/ready', state: 'COMPLETED' },
      { path: '/tape/slow', state: 'STARTED' },
    ]);
    await sleep(350);
    const later = await poll(s, id);
    expect(byPath(later.files)[3]).toMatchObject({ state: 'COMPLETED', finishedAt: expect.any(Number) });
    expect(later.completedAt).toBeGreaterThanOrEqual(later.createdAt as number);
    expect(s.stats.requests).toMatchObject([{ id, files: ['/tape/slow', '/tape/ready', '/tape/broken', '/tape/nothing'], diskLifetime: 'PT1H', token: { sub: 'petrel-test', scope: 'storage.stage:/tape', jti: expect.any(String) } }]);
  });

  it('dcache refuses an unknown top-level key, a P1W lifetime and more than 500 files (413), with `status` a string', async () => {
    const s = await startTapeServer(tb);
    const t = await token();
    const extra = await call(`${s.uri}/stage`, { token: t, body: { files: [{ path: '/tape/a' }], priority: 1 } });
    expect(extra.status).toBe(400);
    expect(extra.headers['content-type']).toBe('application/problem+json');
    expect(extra.json.status).toBe('400');
    expect((await call(`${s.uri}/stage`, { token: t, body: { files: [{ path: '/tape/a', diskLifetime: 'P1W' }] } })).status).toBe(400);
    expect((await call(`${s.uri}/stage`, { token: t, body: { files: [{ path: '/tape/a', diskLifetime: 'P2DT3H' }] } })).status).toBe(201);
    const many = (n: number) => Array.from({ length: n }, (_, i) => `/tape/f${i}`);
    const tooMany = await stage(s, many(501), t);
    expect(tooMany.status).toBe(413);
    expect(tooMany.json.status).toBe('413');
    expect((await stage(s, many(500), t)).status).toBe(201);
    expect(s.stats.refused).toBe(1);
    const storm = await startTapeServer(tb, { dialect: 'storm' });
    expect((await stage(storm, many(600), t)).status).toBe(201);
  });

  it('storm: relative Location, seconds with 0 while unset, a failed file without `error`, unknown keys ignored', async () => {
    const s = await startTapeServer(tb, { dialect: 'storm' });
    s.addFile('/tape/slow', { delayMs: 10_000 });
    s.addFile('/tape/broken', { fail: 'tape drive on fire' });
    const res = await call(`${s.uri}/stage`, { token: await token(), body: { files: [{ path: '/tape/slow' }, { path: '/tape/broken' }], priority: 1 } });
    expect(res.status).toBe(201);
    const id = res.json.requestId as string;
    expect(res.headers.location).toBe(`/api/v1/stage/${id}`);
    const status = await poll(s, id);
    expect(status.createdAt).toBeLessThan(1e11);
    expect(status.completedAt).toBe(0);
    const [broken, slow] = byPath(status.files);
    expect(broken).toEqual({ path: '/tape/broken', state: 'FAILED', startedAt: status.createdAt, finishedAt: expect.any(Number) });
    expect(slow).toEqual({ path: '/tape/slow', state: 'STARTED', startedAt: status.createdAt, finishedAt: 0 });
  });

  it('eos: no Location, `onDisk` instead of `state`, startedAt = createdAt, per-file errors', async () => {
    const s = await startTapeServer(tb, { dialect: 'eos' });
    s.addFile('/tape/a');
    s.addFile('/tape/broken', { fail: 'tape drive on fire' });
    const res = await stage(s, ['/tape/a', '/tape/broken']);
    expect(res.status).toBe(201);
    expect(res.headers.location).toBeUndefined();
    const status = await poll(s, res.json.requestId as string);
    expect(status.startedAt).toBe(status.createdAt);
    expect(status).not.toHaveProperty('completedAt');
    expect(byPath(status.files)).toEqual([
      { path: '/tape/a', onDisk: true },
      { path: '/tape/broken', onDisk: false, error: 'tape drive on fire' },
    ]);
  });

  it('tokens: 401 without or with a bad token, 403 without a covering scope; stage does not imply read', async () => {
    const s = await startTapeServer(tb);
    s.addFile('/tape/a', { onDisk: true });
    const refusedWith = async (t: string | undefined, url = `${s.uri}/stage`) => {
      const r = url.endsWith('/stage') ? await call(url, { ...(t ? { token: t } : {}), body: { files: [{ path: '/tape/a' }] } }) : await call(url, t ? { token: t } : {});
      expect(r.headers['content-type']).toBe('application/problem+json');
      return r.status;
    };
    expect(await refusedWith(undefined)).toBe(401);
    expect(await refusedWith(await token('storage.stage:/tape', { badSignature: true }))).toBe(401);
    expect(await refusedWith(await token('storage.stage:/tape', { aud: 'someone-else' }))).toBe(401);
    expect(await refusedWith(await token('storage.stage:/tape', { expiresIn: -10 }))).toBe(401);
    expect(await refusedWith(await token('storage.read:/tape'))).toBe(403);
    expect(await refusedWith(await token('storage.stage:/tape/a/b'))).toBe(403);
    expect(await refusedWith(await token('storage.stage:/tap'))).toBe(403); // not a component boundary
    expect(await refusedWith(await token('storage.stage:/tape'), `${s.url}/tape/a`)).toBe(403);
    expect(s.stats.refused).toBe(8);
    expect((await stage(s, ['/tape/a'], await token('storage.stage:/', { aud: s.url }))).status).toBe(201);
    expect((await call(`${s.url}/tape/a`, { token: await token('storage.read:/tape') })).status).toBe(200);
    expect((await call(`${s.uri}/archiveinfo`, { token: await token('storage.poll:/tape'), body: { paths: ['/tape/a'] } })).status).toBe(200);
  });

  it('polls list files in a shuffled order with collapsed paths, and answer 404 after forget, after DELETE and for unknown ids', async () => {
    const s = await startTapeServer(tb);
    const paths = Array.from({ length: 20 }, (_, i) => `/tape/f${String(i).padStart(2, '0')}`);
    const id = await stageId(s, [...paths.map((p) => p.replace('/tape/', '//tape///')), '/tape//f00']);
    const orders = await Promise.all([1, 2, 3].map(async () => ((await poll(s, id)).files as Array<{ path: string }>).map((f) => f.path)));
    expect(orders.some((o) => o.join() !== paths.join())).toBe(true);
    expect([...(orders[0] as string[])].sort()).toEqual(paths);
    s.forget(id);
    expect((await call(`${s.uri}/stage/${id}`, { token: await token() })).status).toBe(404);
    const other = await stageId(s, ['/tape/f01']);
    expect((await call(`${s.uri}/stage/${other}`, { method: 'DELETE', token: await token() })).status).toBe(200);
    expect((await call(`${s.uri}/stage/${other}`, { token: await token() })).status).toBe(404);
    expect((await call(`${s.uri}/stage/no-such-id`, { token: await token() })).status).toBe(404);
    expect(s.stats).toMatchObject({ stageRequests: 2, polls: 6, deletes: 1 });
  });

  it('unavailable(ms): every call and every file GET answers 503 with Retry-After for that long', async () => {
    const s = await startTapeServer(tb);
    s.addFile('/tape/a', { onDisk: true });
    const read = await token('storage.read:/tape');
    s.unavailable(300);
    const down = await stage(s, ['/tape/a']);
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toBe('1');
    expect((await call(`${s.url}/tape/a`, { token: read })).status).toBe(503);
    expect((await call(`${s.url}/.well-known/wlcg-tape-rest-api`)).status).toBe(503);
    expect(s.stats.requests).toEqual([]);
    await sleep(350);
    expect((await stage(s, ['/tape/a'])).status).toBe(201);
    expect((await call(`${s.url}/tape/a`, { token: read })).status).toBe(200);
  });

  it('cancel: a foreign path changes nothing (dCache 400 with an empty body, StoRM problem+json); a pending file becomes CANCELLED', async () => {
    const s = await startTapeServer(tb, { defaultDelayMs: 10_000 });
    s.addFile('/tape/a');
    s.addFile('/tape/b');
    const id = await stageId(s, ['/tape/a', '/tape/b']);
    const foreign = await call(`${s.uri}/stage/${id}/cancel`, { token: await token(), body: { paths: ['/tape/a', '/tape/other'] } });
    expect([foreign.status, foreign.text]).toEqual([400, '']);
    expect(byPath((await poll(s, id)).files).map((f) => f.state)).toEqual(['STARTED', 'STARTED']);
    expect((await call(`${s.uri}/stage/${id}/cancel`, { token: await token(), body: { paths: ['/tape/a'] } })).status).toBe(200);
    expect(byPath((await poll(s, id)).files).map((f) => f.state)).toEqual(['CANCELLED', 'STARTED']);
    expect(s.stats.cancelledPaths).toEqual(['/tape/a']);

    const storm = await startTapeServer(tb, { dialect: 'storm' });
    storm.addFile('/tape/a');
    const sid = await stageId(storm, ['/tape/a']);
    for (const op of [`stage/${sid}/cancel`, `release/${sid}`]) {
      const r = await call(`${storm.uri}/${op}`, { token: await token(), body: { paths: ['/tape/other'] } });
      expect([r.status, r.headers['content-type'], r.json.title]).toEqual([400, 'application/problem+json', 'File missing from stage request']);
    }
  });

  it('a file is served once on disk: 503 before, then GET, Range and HEAD + Want-Digest, as Petrel\'s download uses them', async () => {
    const s = await startTapeServer(tb);
    s.addFile('/tape/big', { content: 200_000, delayMs: 200 });
    const read = await token('storage.read:/tape');
    const early = await call(`${s.url}/tape/big`, { token: read });
    expect([early.status, early.headers['retry-after']]).toEqual([503, undefined]);
    await stageId(s, ['/tape/big']);
    await sleep(250);
    const whole = await request(`${s.url}/tape/big`, { dispatcher, headers: { Authorization: `Bearer ${read}` } });
    const body = Buffer.from(await whole.body.arrayBuffer());
    expect([whole.statusCode, body.length]).toEqual([200, 200_000]);
    const part = await call(`${s.url}/tape/big`, { token: read, headers: { Range: 'bytes=10-19' } });
    expect([part.status, part.headers['content-range'], part.text.length > 0]).toEqual([206, 'bytes 10-19/200000', true]);
    const head = await call(`${s.url}/tape/big`, { method: 'HEAD', token: read, headers: { 'Want-Digest': 'adler32' } });
    expect(head.headers.digest).toBe(`adler32=${checksumOf('adler32', body)}`);
    const dir = await tempDir();
    const got = await testEngine(tb).run({ kind: 'get', source: `${s.url}/tape/big`, destination: join(dir, 'big'), token: read, checksum: 'adler32' }, quietContext());
    expect(got.checksum?.verified).toBe(true);
    expect((await readFile(join(dir, 'big'))).equals(body)).toBe(true);
  });

  it('archiveinfo: TAPE, DISK_AND_TAPE once staged, TAPE again after release, LOST, NONE, an error for a missing file', async () => {
    const s = await startTapeServer(tb);
    s.addFile('/tape/t');
    s.addFile('/tape/lost', { lost: true });
    s.addFile('/tape/empty', { content: Buffer.alloc(0) });
    const info = async () => (await call(`${s.uri}/archiveinfo`, { token: await token(), body: { paths: ['/tape/t', '/tape/lost', '/tape/empty', '/tape/missing'] } })).json;
    expect(await info()).toEqual([
      { path: '/tape/t', locality: 'TAPE' },
      { path: '/tape/lost', locality: 'LOST' },
      { path: '/tape/empty', locality: 'NONE' },
      { path: '/tape/missing', error: expect.any(String) },
    ]);
    const id = await stageId(s, ['/tape/t']);
    expect((await info())[0]).toEqual({ path: '/tape/t', locality: 'DISK_AND_TAPE' });
    expect((await call(`${s.uri}/release/${id}`, { token: await token(), body: { paths: ['/tape/t'] } })).status).toBe(200);
    expect((await info())[0]).toEqual({ path: '/tape/t', locality: 'TAPE' });
    expect(s.stats.releasedPaths).toEqual(['/tape/t']);
    expect(byPath((await poll(s, id)).files)).toMatchObject([{ state: 'COMPLETED' }]);
    s.setDelay('/tape/t', 10_000);
    const again = await stageId(s, ['/tape/t']);
    expect(byPath((await poll(s, again)).files)).toMatchObject([{ state: 'STARTED' }]);
    expect(s.timesStaged('/tape/t')).toBe(2);
    s.resetStats();
    expect([s.timesStaged('/tape/t'), s.stats.archiveinfo]).toEqual([0, 0]);
  });
});
