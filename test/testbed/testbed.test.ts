// Proves the test bed behaves as /work/shared/docs/testbed.md says. Uses the bed started by
// global-setup.ts (inject('testbed')); servers a and b are shared with every other test file, so
// the stop/restart test works on a server of its own.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import {
  isRunning,
  mintToken,
  readTestbedInfo,
  restartServer,
  startXrootd,
  stopServer,
  writeDataFile,
  type TestbedInfo,
  type TokenClaims,
} from './index.js';

const tb: TestbedInfo = inject('testbed');
const { a, b } = tb.servers;
let dispatcher: Agent;

beforeAll(async () => {
  dispatcher = new Agent({ connect: { ca: await readFile(tb.caFile) } });
});
afterAll(async () => {
  await dispatcher.close();
});

/**
 * undici request; header names are sent exactly as written (XRootD matches them case-sensitively).
 * A body goes out as a stream, i.e. chunked: undici always writes `content-length` in lower case,
 * which XRootD 5.5.3 ignores (the PUT then succeeds with an EMPTY file, see the test below).
 */
async function call(method: string, url: string, headers: Record<string, string> = {}, body?: Buffer,
  opts: { rawBuffer?: boolean; dispatcher?: Agent } = {}) {
  const payload = body === undefined || opts.rawBuffer ? body : Readable.from([body]);
  const res = await request(url, { method, headers, body: payload, dispatcher: opts.dispatcher ?? dispatcher });
  const data = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, data, text: data.toString('utf8') };
}

const bearer = (t: string) => `Bearer ${t}`;
const unique = (prefix: string) => `/${prefix}-${randomUUID().slice(0, 8)}`;

describe('test bed', () => {
  it('describes itself as plain JSON, also on disk', async () => {
    expect(JSON.parse(JSON.stringify(tb))).toEqual(tb);
    expect(await readTestbedInfo(tb.root)).toEqual(tb);
    expect(a.url).toBe(`https://localhost:${a.port}`);
    expect(a.port).not.toBe(b.port);
  });

  it('issuer publishes discovery and JWKS over HTTPS', async () => {
    const disc = await call('GET', `${tb.issuer.url}/.well-known/openid-configuration`);
    expect(disc.status).toBe(200);
    expect(JSON.parse(disc.text)).toEqual({ issuer: tb.issuer.url, jwks_uri: `${tb.issuer.url}/jwks.json` });
    const jwks = JSON.parse((await call('GET', `${tb.issuer.url}/jwks.json`)).text) as { keys: Record<string, string>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', kid: 'k1', alg: 'ES256' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  it('PUT with storage.create, GET back with storage.read', async () => {
    const path = `${unique('put')}/sub/file.bin`; // PUT creates parent dirs
    const data = randomBytes(100_000);
    const put = await call('PUT', `${a.url}${path}`,
      { Authorization: bearer(await mintToken(tb, { scope: 'storage.create:/' })) }, data);
    expect(put.status).toBe(200);
    expect(put.text).toBe(':-)');
    const get = await call('GET', `${a.url}${path}`,
      { Authorization: bearer(await mintToken(tb, { scope: 'storage.read:/' })) });
    expect(get.status).toBe(200);
    expect(get.data.equals(data)).toBe(true);
    expect((await readFile(`${a.dataDir}${path}`)).equals(data)).toBe(true);
  });

  it('server quirk: a PUT with a lower-case content-length header stores an empty file', async () => {
    const path = unique('lc');
    const t = bearer(await mintToken(tb, { scope: 'storage.create:/' }));
    // Own connection: the unread body stays in it and spoils the next request (400).
    const own = new Agent({ connect: { ca: await readFile(tb.caFile) } });
    const put = await call('PUT', `${a.url}${path}`, { Authorization: t }, Buffer.from('lost'),
      { rawBuffer: true, dispatcher: own }).finally(() => own.destroy());
    expect(put.status).toBe(200);
    expect(put.text).toBe(':-)');
    expect((await stat(`${a.dataDir}${path}`)).size, 'XRootD ignored the lower-case content-length').toBe(0);
  });

  it('refuses with 403: no token, other path, expired, bad signature, wrong aud/iss/nbf, lower-case header', async () => {
    const path = unique('refuse');
    await writeDataFile(a, path, Buffer.from('secret'));
    const url = `${a.url}${path}`;
    const read = (c: Partial<TokenClaims> = {}) => mintToken(tb, { scope: 'storage.read:/', ...c });

    const none = await call('GET', url);
    expect(none.status).toBe(403);
    expect(none.text).toBe(`Unable to open ${path}; permission denied\n`);
    const cases: [string, Partial<TokenClaims>][] = [
      ['scope for another path', { scope: 'storage.read:/elsewhere' }],
      ['expired', { expiresIn: -120 }],
      ['bad signature', { badSignature: true }],
      ['no aud', { aud: null }],
      ['foreign aud', { aud: 'https://example.org' }],
      ['future nbf', { nbf: Math.floor(Date.now() / 1000) + 3600 }],
      ['unknown iss', { iss: 'https://localhost:1' }],
    ];
    for (const [why, claims] of cases) {
      expect((await call('GET', url, { Authorization: bearer(await read(claims)) })).status, why).toBe(403);
    }
    // Same token type that works with a correctly cased header:
    expect((await call('GET', url, { authorization: bearer(await read()) })).status, 'lower-case authorization is ignored').toBe(403);
    const ok = await call('GET', url, { Authorization: bearer(await read()) });
    expect(ok.status).toBe(200);
    expect(ok.text).toBe('secret');
  });

  it('accepts the server URL and the WLCG "any" audience', async () => {
    const path = unique('aud');
    await writeDataFile(a, path, Buffer.from('x'));
    for (const aud of [a.url, 'https://wlcg.cern.ch/jwt/v1/any', [tb.audience, 'other']]) {
      const t = await mintToken(tb, { scope: 'storage.read:/', aud });
      expect((await call('GET', `${a.url}${path}`, { Authorization: bearer(t) })).status).toBe(200);
    }
  });

  it('Want-Digest: adler32 on HEAD', async () => {
    const path = unique('digest');
    await writeDataFile(a, path, Buffer.from('Wikipedia')); // adler32("Wikipedia") = 0x11e60398
    const head = await call('HEAD', `${a.url}${path}`, {
      Authorization: bearer(await mintToken(tb, { scope: 'storage.read:/' })),
      'Want-Digest': 'adler32',
    });
    expect(head.status).toBe(200);
    expect(head.headers['digest']).toBe('adler32=11e60398');
  });

  it('files written by writeDataFile stay overwritable and deletable by the server', async () => {
    const path = `${unique('own')}/deep/f.txt`;
    await writeDataFile(a, path, 1234);
    const t = bearer(await mintToken(tb, { scope: 'storage.modify:/ storage.read:/' }));
    expect((await call('PUT', `${a.url}${path}`, { Authorization: t }, Buffer.from('new'))).status).toBe(200);
    expect((await call('GET', `${a.url}${path}`, { Authorization: t })).text).toBe('new');
    expect((await call('DELETE', `${a.url}${path}`, { Authorization: t })).status).toBe(200);
    expect((await call('GET', `${a.url}${path}`, { Authorization: t })).status).toBe(404);
  });

  it('COPY pull from a to b ends with "success: Created"', async () => {
    const src = unique('src');
    const dst = unique('dst');
    const data = await readFile(await writeDataFile(a, src, 3 << 20));
    const res = await call('COPY', `${b.url}${dst}`, {
      Source: `${a.url}${src}`,
      Authorization: bearer(await mintToken(tb, { scope: 'storage.create:/' })),
      TransferHeaderAuthorization: bearer(await mintToken(tb, { scope: 'storage.read:/' })),
      Credential: 'none',
    });
    expect(res.status).toBe(201);
    expect(res.text).toMatch(/^Perf Marker\n/);
    expect(res.text.split('\n').at(-1), 'final line, no newline').toBe('success: Created');
    expect((await readFile(`${b.dataDir}${dst}`)).equals(data)).toBe(true);
  });

  it('an extra server can be stopped and restarted (same port, data kept)', async () => {
    const s = await startXrootd(tb, `r${randomUUID().slice(0, 6)}`);
    onTestFinished(() => stopServer(s));
    const path = unique('restart');
    await writeDataFile(s, path, Buffer.from('still here'));
    const t = bearer(await mintToken(tb, { scope: 'storage.read:/' }));
    expect((await call('GET', `${s.url}${path}`, { Authorization: t })).status).toBe(200);

    await stopServer(s);
    expect(await isRunning(s), 'process gone after stopServer').toBe(false);
    await expect(call('GET', `${s.url}${path}`, { Authorization: t }), 'nothing listens any more').rejects.toThrow();

    await restartServer(s);
    expect(await isRunning(s), 'running after restartServer').toBe(true);
    const again = await call('GET', `${s.url}${path}`, { Authorization: bearer(await mintToken(tb, { scope: 'storage.read:/' })) });
    expect(again.status).toBe(200);
    expect(again.text).toBe('still here');

    await stopServer(s, 'SIGKILL');
    expect(await isRunning(s)).toBe(false);
    await restartServer(s);
    expect(await isRunning(s)).toBe(true);
  }, 60_000);
});
