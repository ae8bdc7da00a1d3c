// Reads and writes through a Pelican federation: the stand-in director (test/helpers/federation.ts)
// in front of three real XRootD servers of the test bed: an origin; a "cache" holding the same
// files; and a real cache, XRootD's proxy cache (XCache: libXrdPss + libXrdPfc) in front of the
// origin, which fetches what it lacks from the origin over root:// (public paths only: it
// forwards no token). Pelican's own cache cannot run here.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { JobDetail, JobView } from '../../src/api/index.js';
import { finished, makeHome, petrel, startAgent, waitForJob, type Home, type RunningAgent } from '../helpers/agent.js';
import { standInFederation, type StandInFederation } from '../helpers/federation.js';
import { standIn } from '../helpers/stand-in.js';
import { mintToken, restartServer, startXrootd, stopServer, writeDataFile, type XrootdServer } from '../testbed/index.js';

const tb = inject('testbed');

let origin: XrootdServer;
let cache1: XrootdServer;
let cache2: XrootdServer;
let fed: StandInFederation;
let home: Home;
let tokenFile: string;
const small = randomBytes(100_000);

/** The same file on the origin and on cache 1 (cache 2, an XCache, fetches it from the origin). */
async function everywhere(path: string, data: Buffer): Promise<void> {
  for (const s of [origin, cache1]) await writeDataFile(s, path, data);
}

beforeAll(async () => {
  const started = await Promise.all(['forigin', 'fcache1'].map((n) => startXrootd(tb, n, { publicRead: ['/pub', '/bulk', '/flaky', '/nest'] })));
  [origin, cache1] = started as [XrootdServer, XrootdServer];
  cache2 = await startXrootd(tb, 'fxcache', { cacheOf: origin });
  fed = await standInFederation(tb, [
    { prefix: '/pub', caches: [cache1.url, cache2.url], origin: origin.url, requireToken: false },
    // A namespace inside another, served elsewhere: an answer about /nest knows nothing of it.
    { prefix: '/nest', caches: [cache1.url], origin: origin.url, requireToken: false },
    { prefix: '/nest/inner', caches: [origin.url], origin: origin.url, requireToken: false },
    { prefix: '/expired', caches: [cache1.url], origin: origin.url, requireToken: true, tokenExpired: true },
    { prefix: '/bulk', caches: [cache1.url], origin: origin.url, requireToken: false },
    { prefix: '/prot', caches: [cache1.url, cache2.url], origin: origin.url, requireToken: true, writable: true, issuers: [tb.issuer.url], basePath: '/' },
  ]);
  home = await makeHome(tb, { retry: { attempts: 3, baseDelayMs: 200, maxDelayMs: 1000 } });
  tokenFile = join(home.dir, 'token');
  await writeFile(tokenFile, await mintToken(tb, { scope: 'storage.read:/prot storage.create:/prot storage.modify:/prot', expiresIn: 3600 }), { mode: 0o600 });
  await everywhere('/pub/data/small.bin', small);
  await everywhere('/prot/data/small.bin', small);
});
afterAll(async () => {
  await petrel(home, ['agent', 'stop']);
  await fed.close();
  await Promise.all([origin, cache1, cache2].map((s) => stopServer(s)));
  await home.cleanup();
});
beforeEach(() => {
  fed.queries.length = 0;
});

const pelican = (path: string) => `pelican://${fed.host}${path}`;

async function statusJson(id: string, at: Home = home): Promise<JobDetail> {
  const res = await petrel(at, ['job', 'status', id, '--json']);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as JobDetail;
}

describe('reads through a federation', () => {
  it('reads a public object from the best cache without a token, and job status names the cache', async () => {
    const dest = join(home.dir, 'pub-small.bin');
    const res = await petrel(home, ['get', '-q', '--async', '--wait', '--json', pelican('/pub/data/small.bin'), dest]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(await readFile(dest)).toEqual(small);
    const job = JSON.parse(res.stdout) as JobView;
    const status = await statusJson(job.id);
    expect(status.transfers[0]?.servedBy).toBe(cache1.url);
    const text = await petrel(home, ['job', 'status', job.id]);
    expect(text.stdout).toContain(`served by ${cache1.url}`);
    // A read is a GET to the director, which sent it to a cache; the job id went along.
    expect(fed.queries).toEqual([{ method: 'GET', path: '/pub/data/small.bin', directRead: false, jobId: job.id }]);
  });

  it('a protected namespace is read with the job token; without one the transfer waits for a login', async () => {
    const dest = join(home.dir, 'prot-small.bin');
    const ok = await petrel(home, ['get', '-q', pelican('/prot/data/small.bin'), dest, '--token', tokenFile]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(await readFile(dest)).toEqual(small);

    const agent: RunningAgent = await startAgent(home);
    try {
      const sub = await petrel(home, ['get', '--async', pelican('/prot/data/small.bin'), join(home.dir, 'prot-none.bin')]);
      expect(sub.code, sub.stderr).toBe(0);
      const waiting = await waitForJob(agent.client, sub.stdout.trim(), (j) => j.state === 'waiting');
      expect(waiting.waiting?.reason).toContain(`pelican://${fed.host}/prot needs a token for reading`);
      expect(waiting.waiting?.hint).toContain(`petrel warm ${pelican('/prot/data/small.bin')}`);
      await petrel(home, ['job', 'cancel', sub.stdout.trim()]);
    } finally {
      await agent.stop();
    }
  });

  it('the cache killed mid-transfer: the read moves to the next cache and resumes from the bytes it has', async () => {
    // The origin's copy, which cache 2 (the XCache) fetches and serves, differs in its first half:
    // a file that ends with cache 1's first bytes and cache 2's last ones proves the read went on
    // from where it was (a Range), not afresh. The XCache refuses HEAD (405): the resume learns
    // the size from a one-byte range instead.
    const size = 384 << 20;
    const first = randomBytes(size);
    const second = Buffer.concat([randomBytes(size / 2), first.subarray(size / 2)]);
    await writeDataFile(origin, '/pub/big.bin', second);
    await writeDataFile(cache1, '/pub/big.bin', first);
    const agent = await startAgent(home);
    try {
      const dest = join(home.dir, 'big.bin');
      const sub = await petrel(home, ['get', '--async', '--checksum', 'none', pelican('/pub/big.bin'), dest]);
      expect(sub.code, sub.stderr).toBe(0);
      const id = sub.stdout.trim();
      const during = await waitForJob(agent.client, id, (j) => j.bytesDone > 16 << 20 || finished(j));
      expect(finished(during), 'the download ended before the cache could be killed').toBe(false);
      await stopServer(cache1, 'SIGKILL');
      const done = await waitForJob(agent.client, id, finished);
      expect(done.state, JSON.stringify(done)).toBe('succeeded');
      const t = (await statusJson(id)).transfers[0];
      expect(t?.servedBy).toBe(cache2.url);
      expect(t?.serverAttempts?.map((a) => a.server)).toEqual([cache1.url]);
      expect(t?.attempts).toBe(1);
      const got = await readFile(dest);
      expect(got.length).toBe(size);
      // Up to where the resume began the bytes are cache 1's, after that cache 2's. The download
      // ran in two ranges at once: what it kept is the part written without a gap, the first
      // range's bytes, not all it had counted.
      let resumedAt = 0;
      while (resumedAt < size / 2 && got[resumedAt] === first[resumedAt]) resumedAt++;
      expect(resumedAt).toBeGreaterThan(0);
      expect(got.subarray(resumedAt).equals(second.subarray(resumedAt))).toBe(true);
      const status = await petrel(home, ['job', 'status', id]);
      expect(status.stdout).toContain(`served by ${cache2.url}`);
      expect(status.stdout).toContain(`tried first ${cache1.url}:`);
    } finally {
      await agent.stop();
      await restartServer(cache1);
    }
  });

  it('--cache names the cache to read from first; the XCache fetches the object from the origin on a miss', async () => {
    const dest = join(home.dir, 'pinned.bin');
    const res = await petrel(home, ['get', '-q', '--async', '--wait', '--json', '--cache', cache2.url, pelican('/pub/data/small.bin'), dest]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const status = await statusJson((JSON.parse(res.stdout) as JobView).id);
    expect(status.transfers[0]?.servedBy).toBe(cache2.url);
    expect(await readFile(dest)).toEqual(small);
    // What XCache keeps of a file it fetched: the data and its .cinfo beside it.
    expect((await readFile(join(cache2.dataDir, 'pub/data/small.bin'))).equals(small)).toBe(true);
  });

  it('a job of 2,000 files in one namespace asks the director once (a namespace the agent has not seen)', async () => {
    const n = 2000;
    const list: string[] = [];
    for (let i = 0; i < n; i++) {
      const data = Buffer.from(`file ${i}\n`);
      await writeDataFile(cache1, `/bulk/many/f${i}.txt`, data);
      list.push(`${pelican(`/bulk/many/f${i}.txt`)} ${join(home.dir, 'many', `f${i}.txt`)}`);
    }
    const listFile = join(home.dir, 'many.list');
    await writeFile(listFile, `${list.join('\n')}\n`);
    const res = await petrel(home, ['get', '-q', '--async', '--wait', '--json', '--from-file', listFile, join(home.dir, 'many/')], { timeoutMs: 300_000 });
    expect(res.code, res.stdout.slice(-2000) + res.stderr).toBe(0);
    expect((JSON.parse(res.stdout) as JobView).counts.succeeded).toBe(n);
    expect(await readFile(join(home.dir, 'many', 'f1999.txt'), 'utf8')).toBe('file 1999\n');
    expect(fed.queries).toEqual([{ method: 'GET', path: expect.stringMatching(/^\/bulk\/many\/f\d+\.txt$/) as unknown as string, directRead: false, jobId: expect.any(String) as unknown as string }]);
  }, 300_000);

  it('an object in a nested namespace that a kept answer routes wrongly is asked about afresh', async () => {
    await writeDataFile(cache1, '/nest/outer.bin', small);
    await writeDataFile(origin, '/nest/inner/deep.bin', small);
    // Through the agent, which then keeps the /nest answer.
    const first = await petrel(home, ['get', '-q', '--async', '--wait', pelican('/nest/outer.bin'), join(home.dir, 'outer.bin')]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    fed.queries.length = 0;
    // The /nest answer sends this to cache 1, which has no such file (404); the director knows better.
    const res = await petrel(home, ['get', '-q', '--async', '--wait', '--json', pelican('/nest/inner/deep.bin'), join(home.dir, 'deep.bin')]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(await readFile(join(home.dir, 'deep.bin'))).toEqual(small);
    expect((await statusJson((JSON.parse(res.stdout) as JobView).id)).transfers[0]?.servedBy).toBe(origin.url);
    expect(fed.queries.map((q) => q.path)).toEqual(['/nest/inner/deep.bin']);
  });

  it('osdf:/// goes to the federation config.json names for osdf', async () => {
    const osdfHome = await makeHome(tb, { federations: { osdf: { discovery: fed.url } } });
    try {
      const dest = join(osdfHome.dir, 'osdf.bin');
      const res = await petrel(osdfHome, ['get', '-q', 'osdf:///pub/data/small.bin', dest]);
      expect(res.code, res.stdout + res.stderr).toBe(0);
      expect(await readFile(dest)).toEqual(small);
      const stash = await petrel(osdfHome, ['get', '-q', 'stash:///pub/data/small.bin', join(osdfHome.dir, 'stash.bin')]);
      expect(stash.code, stash.stdout + stash.stderr).toBe(0);
    } finally {
      await osdfHome.cleanup();
    }
  });

  it('a path no namespace serves fails with the director\'s 404 in its own words', async () => {
    const res = await petrel(home, ['get', pelican('/nowhere/x.bin'), join(home.dir, 'x.bin')]);
    expect(res.code).toBe(1);
    expect(res.stdout + res.stderr).toContain(`no namespace of pelican://${fed.host} serves /nowhere/x.bin`);
  });

  it('a director answering 401 (the token expired) fails the transfer saying to log in again', async () => {
    const res = await petrel(home, ['get', pelican('/expired/x.bin'), join(home.dir, 'x.bin')]);
    expect(res.code).toBe(1);
    expect(res.stdout + res.stderr).toContain(`the director of pelican://${fed.host} refused the token for pelican://${fed.host}/expired/x.bin`);
    expect(res.stdout + res.stderr).toContain('token expired');
    expect(res.stdout + res.stderr).toContain(`petrel warm pelican://${fed.host}/expired/x.bin`);
  });

  it('a director that answers 429 (just restarted) is asked again', async () => {
    fed.throttle(1);
    const dest = join(home.dir, 'throttled.bin');
    const res = await petrel(home, ['get', '-q', pelican('/pub/data/small.bin'), dest]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(await readFile(dest)).toEqual(small);
    expect(fed.queries.length).toBe(2);
  });
});

describe('writes through a federation', () => {
  it('put goes to the origin the director names', async () => {
    const local = join(home.dir, 'up.bin');
    const data = randomBytes(50_000);
    await writeFile(local, data);
    const res = await petrel(home, ['put', '-q', local, pelican('/prot/up/up.bin'), '--token', tokenFile]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(await readFile(join(origin.dataDir, 'prot/up/up.bin'))).toEqual(data);
    // Asked by the token check at submission and by the upload: a PUT each time, never a read.
    expect(new Set(fed.queries.map((q) => q.method))).toEqual(new Set(['PUT']));
  });

  it('a namespace without a writable origin: put fails saying so', async () => {
    const local = join(home.dir, 'up2.bin');
    await writeFile(local, 'x');
    const pubToken = join(home.dir, 'pub-token');
    await writeFile(pubToken, await mintToken(tb, { scope: 'storage.create:/pub', expiresIn: 600 }), { mode: 0o600 });
    const res = await petrel(home, ['put', local, pelican('/pub/up2.bin'), '--token', pubToken]);
    expect(res.code).toBe(1);
    expect(res.stdout + res.stderr).toContain(`no origin of pelican://${fed.host} takes writes under /pub/up2.bin`);
  });
});

describe('listings and copies through a federation', () => {
  it('ls and stat ask the origin (PROPFIND) and name entries by their federation URLs', async () => {
    const ls = await petrel(home, ['ls', '--json', pelican('/pub/data/')]);
    expect(ls.code, ls.stderr).toBe(0);
    const entries = JSON.parse(ls.stdout) as { name: string; url: string; size: number; type: string }[];
    expect(entries).toContainEqual(expect.objectContaining({ name: 'small.bin', url: pelican('/pub/data/small.bin'), size: small.length, type: 'file' }));
    const stat = await petrel(home, ['stat', '--json', pelican('/prot/data/small.bin'), '--token', tokenFile]);
    expect(stat.code, stat.stderr).toBe(0);
    expect(JSON.parse(stat.stdout)).toEqual([expect.objectContaining({ url: pelican('/prot/data/small.bin'), size: small.length, type: 'file' })]);
    expect(fed.queries.every((q) => q.method === 'PROPFIND')).toBe(true);
  });

  it('get -r lists the tree at the origin and reads each file through a cache', async () => {
    const tree = { 'a.bin': randomBytes(3000), 'sub/b.bin': randomBytes(5000) };
    for (const [rel, data] of Object.entries(tree)) await everywhere(`/pub/tree/${rel}`, data);
    const dest = join(home.dir, 'tree');
    const res = await petrel(home, ['get', '-r', '-q', '--async', '--wait', '--json', pelican('/pub/tree/'), dest]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    for (const [rel, data] of Object.entries(tree)) expect(await readFile(join(dest, rel)), rel).toEqual(data);
    const status = await statusJson((JSON.parse(res.stdout) as JobView).id);
    expect(status.transfers.map((t) => t.source).sort()).toEqual([pelican('/pub/tree/a.bin'), pelican('/pub/tree/sub/b.bin')]);
    expect(status.transfers.every((t) => t.servedBy === cache1.url)).toBe(true);
  });

  it('rm -r removes at the origin; the namespace root is refused without --force', async () => {
    await writeDataFile(origin, '/prot/gone/x/y.bin', 10);
    const root = await petrel(home, ['rm', '-r', pelican('/prot'), '--token', tokenFile]);
    expect(root.code).toBe(2);
    expect(root.stderr).toContain('it is the root of the namespace /prot');
    const res = await petrel(home, ['rm', '-r', '--json', pelican('/prot/gone'), '--token', tokenFile]);
    expect(res.code, res.stderr).toBe(0);
    expect((JSON.parse(res.stdout) as { removed: string[] }).removed).toContain(pelican('/prot/gone/x/y.bin'));
    await expect(readFile(join(origin.dataDir, 'prot/gone/x/y.bin'))).rejects.toThrow();
  });

  it('copy from a federation path to an https storage goes between the origin and the storage (COPY)', async () => {
    const { b } = tb.servers;
    const copyToken = join(home.dir, 'copy-token');
    await writeFile(copyToken, await mintToken(tb, { scope: 'storage.read:/prot storage.create:/fedcopy storage.modify:/fedcopy', expiresIn: 600 }), { mode: 0o600 });
    const res = await petrel(home, ['copy', '-q', pelican('/prot/data/small.bin'), `${b.url}/fedcopy/small.bin`, '--token', copyToken]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(await readFile(join(b.dataDir, 'fedcopy/small.bin'))).toEqual(small);
    // The source side goes to an origin: a GET with ?directread.
    expect(fed.queries).toContainEqual(expect.objectContaining({ method: 'GET', path: '/prot/data/small.bin', directRead: true }));
  });

  it('copy from an https storage into a federation path: the director names the origin for a COPY, which pulls', async () => {
    const { b } = tb.servers;
    const data = randomBytes(40_000);
    await writeDataFile(b, '/fedin/in.bin', data);
    const copyToken = join(home.dir, 'copy-in-token');
    await writeFile(copyToken, await mintToken(tb, { scope: 'storage.read:/fedin storage.create:/prot storage.modify:/prot', expiresIn: 600 }), { mode: 0o600 });
    const res = await petrel(home, ['copy', '-q', `${b.url}/fedin/in.bin`, pelican('/prot/in/in.bin'), '--token', copyToken]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(await readFile(join(origin.dataDir, 'prot/in/in.bin'))).toEqual(data);
    expect(fed.queries).toContainEqual(expect.objectContaining({ method: 'COPY', path: '/prot/in/in.bin' }));
  });

  it('put -r into a federation path makes the directories at the origin', async () => {
    const local = join(home.dir, 'uptree');
    await mkdir(join(local, 'sub'), { recursive: true });
    await writeFile(join(local, 'a.txt'), 'a');
    await writeFile(join(local, 'sub', 'b.txt'), 'bb');
    const res = await petrel(home, ['put', '-r', '-q', '--async', '--wait', local, pelican('/prot/uptree/'), '--token', tokenFile]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(await readFile(join(origin.dataDir, 'prot/uptree/uptree/sub/b.txt'), 'utf8')).toBe('bb');
    expect(await readFile(join(origin.dataDir, 'prot/uptree/uptree/a.txt'), 'utf8')).toBe('a');
  });
});

describe('prestage through a federation', () => {
  it('a cache without the prestage API is warmed by reading the object whole', async () => {
    const res = await petrel(home, ['prestage', '--json', pelican('/pub/data/small.bin')]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const job = JSON.parse(res.stdout) as JobView;
    expect(job.kind).toBe('prestage');
    expect(job.counts.succeeded).toBe(1);
    const status = await statusJson(job.id);
    expect(status.transfers[0]).toMatchObject({ servedBy: cache1.url, bytesDone: small.length });
  });

  it("a cache with Pelican's prestage API is asked through it, and its failure fails the file with the cache's words", async () => {
    const asked: string[] = [];
    const jobIds = new Set<string | undefined>();
    // A stand-in for a Pelican cache's prestage API (client/prestage.go's answers): no XRootD offers it.
    const cache = await standIn(tb, (req, res) => {
      const url = new URL(req.url ?? '/', 'https://x');
      if (url.pathname !== '/pelican/api/v1.0/prestage') return void res.writeHead(404).end();
      const path = url.searchParams.get('path');
      if (!path) return void res.writeHead(400).end('missing path');
      asked.push(path);
      jobIds.add(req.headers['x-pelican-jobid'] as string | undefined);
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('status: queued\n');
      setTimeout(() => res.end(path.endsWith('bad.bin') ? 'status: active,offset=10\nfailure: origin unreachable\n' : 'status: active,offset=4096\nsuccess: ok\n'), 50);
    });
    const pre = await standInFederation(tb, [{ prefix: '/pre', caches: [cache.url], origin: origin.url, requireToken: false }]);
    try {
      const ok = await petrel(home, ['prestage', '--json', `pelican://${pre.host}/pre/good.bin`]);
      expect(ok.code, ok.stdout + ok.stderr).toBe(0);
      // Data requests carry the job id, as director queries do.
      expect([...jobIds]).toEqual([(JSON.parse(ok.stdout) as JobView).id]);
      const bad = await petrel(home, ['prestage', '--json', `pelican://${pre.host}/pre/bad.bin`]);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toContain(`the cache ${cache.url} could not prestage /pre/bad.bin: origin unreachable`);
      expect(asked[0]).toBe('/pre/good.bin');
      expect(asked.filter((p) => p === '/pre/bad.bin').length).toBeGreaterThan(1);
    } finally {
      await pre.close();
    }
  });
});

describe('failover between caches', () => {
  it('a cache answering 503 and one that stalls mid-body are left for the next; the job prefers the healthy one after', async () => {
    const data = randomBytes(300_000);
    for (let i = 0; i < 4; i++) await writeDataFile(cache1, `/flaky/f${i}.bin`, data);
    let broken = 0;
    const c503 = await standIn(tb, (req, res) => {
      broken++;
      req.resume();
      res.writeHead(503, { 'Content-Type': 'text/plain' }).end('cache overloaded');
    });
    // Sends the real first 64 KiB of the file, then nothing: a stall, found by the idle timeout.
    const stalled = await standIn(tb, (req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Length': String(data.length) });
      res.write(data.subarray(0, 65_536));
    });
    const flaky = await standInFederation(tb, [{ prefix: '/flaky', caches: [c503.url, stalled.url, cache1.url], origin: origin.url, requireToken: false }]);
    const quick = await makeHome(tb, { idleTimeoutMs: 1500, concurrency: 1, retry: { attempts: 2, baseDelayMs: 100, maxDelayMs: 200 } });
    try {
      const first = await petrel(quick, ['get', '-q', '--async', '--wait', '--json', `pelican://${flaky.host}/flaky/f0.bin`, join(quick.dir, 'f0.bin')]);
      expect(first.code, first.stdout + first.stderr).toBe(0);
      expect(await readFile(join(quick.dir, 'f0.bin'))).toEqual(data);
      const t0 = (await statusJson((JSON.parse(first.stdout) as JobView).id, quick)).transfers[0];
      expect(t0?.servedBy).toBe(cache1.url);
      expect(t0?.serverAttempts?.map((a) => a.server)).toEqual([c503.url, stalled.url]);
      expect(t0?.serverAttempts?.[0]?.error).toContain('503 cache overloaded');
      expect(t0?.attempts).toBe(1);

      // One job of three: after the first file, the two that failed are tried after the healthy cache.
      broken = 0;
      const many = await petrel(quick, ['get', '-q', '--async', '--wait', '--json', ...[1, 2, 3].map((i) => `pelican://${flaky.host}/flaky/f${i}.bin`), join(quick.dir, 'many/')]);
      expect(many.code, many.stdout + many.stderr).toBe(0);
      const job = await statusJson((JSON.parse(many.stdout) as JobView).id, quick);
      const attempts = job.transfers.map((t) => t.serverAttempts?.length ?? 0);
      expect(attempts[0]).toBe(2);
      expect(attempts.slice(1)).toEqual([0, 0]);
      expect(broken).toBe(1);
    } finally {
      await petrel(quick, ['agent', 'stop']);
      await flaky.close();
      await quick.cleanup();
    }
  });
});
