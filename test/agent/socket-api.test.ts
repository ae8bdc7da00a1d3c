// The socket API as a client sees it: errors as JSON, limits, and a single agent per socket.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import Database from 'better-sqlite3';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { CLI, finished, makeHome, petrel, startAgent, waitForJob, type Home, type RunningAgent } from '../helpers/agent.js';
import { mintToken, writeDataFile } from '../testbed/index.js';
import { jsonOrUndefined } from '../helpers/files.js';

const tb = inject('testbed');
let home: Home;
let agent: RunningAgent;
let raw: Agent;

async function call(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}) {
  const res = await request(`http://petrel${path}`, { dispatcher: raw, method, body, headers });
  const text = await res.body.text();
  const json = jsonOrUndefined(text);
  return { status: res.statusCode, type: String(res.headers['content-type']), json: json as { error?: { code: string; message: string; hint?: string } } };
}

beforeAll(async () => {
  home = await makeHome(tb, { maxRequestBytes: 64 * 1024 });
  agent = await startAgent(home);
  raw = new Agent({ connect: { socketPath: home.socket } });
});
afterAll(async () => {
  await raw?.close();
  await agent?.stop();
  await home?.cleanup();
});

describe('socket API', () => {
  it('answers health with the pid and where the database lives', async () => {
    const h = await agent.client.health();
    expect(h.pid).toBe(agent.child.pid);
    expect(h.database).toBe(join(home.stateDir, 'agent.db'));
  });

  it.each([
    ['malformed JSON', 'POST', '/v1/jobs', '{"kind": "get", ', { 'content-type': 'application/json' }, 400, 'API_BAD_REQUEST'],
    ['a body that is not JSON', 'POST', '/v1/jobs', 'kind=get', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'API_UNSUPPORTED_MEDIA_TYPE'],
    ['an unknown job kind', 'POST', '/v1/jobs', JSON.stringify({ kind: 'teleport', transfers: [{ source: 'https://h/x', destination: '/tmp/x' }] }), { 'content-type': 'application/json' }, 400, 'API_BAD_REQUEST'],
    ['no transfers', 'POST', '/v1/jobs', JSON.stringify({ kind: 'get', transfers: [] }), { 'content-type': 'application/json' }, 400, 'API_BAD_REQUEST'],
    ['an unknown field', 'POST', '/v1/jobs', JSON.stringify({ kind: 'get', transfers: [{ source: 'https://h/x', destination: '/tmp/x' }], priority: 9 }), { 'content-type': 'application/json' }, 400, 'API_BAD_REQUEST'],
    ['a relative local path', 'POST', '/v1/jobs', JSON.stringify({ kind: 'get', transfers: [{ source: 'https://h/x', destination: 'x' }] }), { 'content-type': 'application/json' }, 400, 'API_BAD_REQUEST'],
    ['a get whose source is local', 'POST', '/v1/jobs', JSON.stringify({ kind: 'get', transfers: [{ source: '/tmp/a', destination: '/tmp/x' }] }), { 'content-type': 'application/json' }, 400, 'API_BAD_REQUEST'],
    ['two transfers to one destination', 'POST', '/v1/jobs', JSON.stringify({ kind: 'get', transfers: [{ source: 'https://h/a/x', destination: '/tmp/x' }, { source: 'https://h/b/x', destination: '/tmp/x' }] }), { 'content-type': 'application/json' }, 400, 'API_BAD_REQUEST'],
    ['a bad list limit', 'GET', '/v1/jobs?limit=0', undefined, {}, 400, 'API_BAD_REQUEST'],
    ['an unknown job', 'GET', '/v1/jobs/nosuchjob', undefined, {}, 404, 'JOB_NOT_FOUND'],
    ['an unknown route', 'GET', '/v1/teapot', undefined, {}, 404, 'API_NOT_FOUND'],
    ['a route outside /v1', 'DELETE', '/', undefined, {}, 404, 'API_NOT_FOUND'],
  ] as const)('refuses %s with a JSON error and keeps serving', async (_what, method, path, body, headers, status, code) => {
    const res = await call(method, path, body, { ...headers });
    expect(res.status).toBe(status);
    expect(res.type).toContain('application/json');
    expect(res.json?.error?.code).toBe(code);
    expect(res.json?.error?.message.length).toBeGreaterThan(5);
    expect((await agent.client.health()).ok).toBe(true);
  });

  const ndjson = (...lines: unknown[]) => lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n');
  const NDJSON = { 'content-type': 'application/x-ndjson' };

  it('takes a job as NDJSON, the job on the first line and a transfer on each after, in order', async () => {
    const token = await mintToken(tb, { scope: 'storage.read:/' });
    const paths = await Promise.all([0, 1, 2].map(async (i) => {
      const path = `/ndjson-${randomUUID().slice(0, 8)}-${i}.bin`;
      await writeDataFile(tb.servers.a, path, 1000 + i);
      return path;
    }));
    const body = ndjson({ kind: 'get', token, checksum: 'adler32' }, ...paths.map((p, i) => ({ source: `${tb.servers.a.url}${p}`, destination: join(home.dir, 'nd', `f${i}`) })), '');
    const res = await call('POST', '/v1/jobs', body, NDJSON);
    expect(res.status).toBe(201);
    const id = (res.json as { id: string }).id;
    const done = await waitForJob(agent.client, id, finished);
    expect(done.state).toBe('succeeded');
    const detail = await agent.client.job(id);
    expect(detail.transfers.map((t) => [t.index, t.source, t.bytesDone])).toEqual(paths.map((p, i) => [i, `${tb.servers.a.url}${p}`, 1000 + i]));
  });

  it.each([
    ['an empty body', '', 'the body is empty'],
    ['a job line that is not a job', ndjson({ kind: 'teleport' }, { source: 'https://h/x', destination: '/tmp/x' }), 'line 1'],
    ['a line that is not JSON', ndjson({ kind: 'get' }, { source: 'https://h/x', destination: '/tmp/x' }, '{"source": '), 'line 3: not JSON'],
    ['a transfer with an unknown field', ndjson({ kind: 'get' }, { source: 'https://h/x', destination: '/tmp/x', size: 1 }), 'line 2'],
    ['a relative path on the fourth line', ndjson({ kind: 'get' }, { source: 'https://h/a', destination: '/tmp/a' }, { source: 'https://h/b', destination: '/tmp/b' }, { source: 'https://h/c', destination: 'c' }), 'transfer 2: the local path c must be absolute'],
    ['no transfers', ndjson({ kind: 'get' }), 'no transfers'],
    // Stored a batch at a time: the two writers are in different batches.
    ['a destination written twice, 1,043 lines apart', ndjson({ kind: 'get' }, ...Array.from({ length: 1100 }, (_, i) => ({ source: `https://h/${i}`, destination: i === 1050 ? '/d/x/../7' : `/d/${i}` }))), 'transfer 1050: transfer 7 already writes /d/7'],
  ] as const)('refuses an NDJSON job with %s, naming where, and stores nothing', async (_what, body, said) => {
    const before = (await agent.client.list({ limit: 1000 })).jobs.length;
    const res = await call('POST', '/v1/jobs', body, NDJSON);
    expect(res.status).toBe(400);
    expect(res.json?.error?.code).toBe('API_BAD_REQUEST');
    expect(res.json?.error?.message).toContain(said);
    expect((await agent.client.list({ limit: 1000 })).jobs.length).toBe(before);
  });

  it('keeps nothing of a submission cut off by its client, by a stop of the agent, or by a kill -9 of the agent', async () => {
    const own = await makeHome(tb);
    onTestFinished(() => own.cleanup());
    const lines = (n: number, from: string) => Array.from({ length: n }, (_, i) => JSON.stringify({ source: `https://h.example/${from}/${i}`, destination: `/tmp/${from}/${i}` })).join('\n');
    // Sends the job line and `n` transfers of a body it never finishes.
    const startSubmission = (n: number, from: string) => {
      const req = httpRequest({ socketPath: own.socket, path: '/v1/jobs', method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' } });
      req.on('error', () => undefined);
      req.write(`${JSON.stringify({ kind: 'get' })}\n${lines(n, from)}\n`);
      return req;
    };
    const transferRows = () => {
      // Not read-only: after a kill -9 the reader must recover the WAL.
      const db = new Database(join(own.stateDir, 'agent.db'));
      try {
        return db.prepare('SELECT count(*) FROM transfers').pluck().get() as number;
      } finally {
        db.close();
      }
    };
    const settle = () => new Promise((r) => setTimeout(r, 500));

    let running = await startAgent(own);
    const byClient = startSubmission(1200, 'client');
    await settle();
    byClient.destroy();
    await settle();
    expect(running.log()).toContain('request cut off by the client');
    // The agent stops while a submission is coming in: it is refused and taken back.
    const byStop = startSubmission(1200, 'stop');
    await settle();
    expect(await running.stop()).toBe(0);
    byStop.destroy();
    expect(running.log()).not.toContain('request failed');
    expect(transferRows()).toBe(0);

    running = await startAgent(own);
    const byKill = startSubmission(1200, 'kill');
    await settle();
    await running.kill9();
    byKill.destroy();
    // What the killed agent had stored is there, hidden, until the next start.
    expect(transferRows()).toBeGreaterThan(0);
    running = await startAgent(own);
    expect((await running.client.list({ limit: 10 })).jobs).toEqual([]);
    expect(await running.stop()).toBe(0);
    expect(transferRows()).toBe(0);
  });

  it('takes an NDJSON job sent in chunks, without Content-Length, as a streaming client sends it; and refuses one over the limit with 413, closing the connection', async () => {
    // One kept-alive connection for every request: what a refused body left unread must not spill into the next request.
    const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    onTestFinished(() => keepAlive.destroy());
    const chunked = (lines: string[]) =>
      new Promise<{ status: number; json: { id?: string; error?: { code: string; message: string } } }>((resolve, reject) => {
        const req = httpRequest({ agent: keepAlive, socketPath: home.socket, path: '/v1/jobs', method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as { id?: string } }));
        });
        req.on('error', reject);
        for (const line of lines) req.write(`${line}\n`);
        req.end();
      });
    const transfer = (i: number) => JSON.stringify({ source: `${tb.servers.a.url}/missing-${randomUUID()}`, destination: join(home.dir, 'chunked', `f${i}`) });
    const ok = await chunked([JSON.stringify({ kind: 'get', checksum: 'none' }), transfer(0), transfer(1)]);
    expect(ok.status).toBe(201);
    expect((await agent.client.job(ok.json.id as string)).counts.total).toBe(2);

    const before = (await agent.client.list({ limit: 1000 })).jobs.length;
    const big = await chunked([JSON.stringify({ kind: 'get' }), ...Array.from({ length: 800 }, (_, i) => transfer(i))]);
    expect(big.status).toBe(413);
    expect(big.json.error?.code).toBe('API_PAYLOAD_TOO_LARGE');
    expect((await agent.client.list({ limit: 1000 })).jobs.length).toBe(before);
    for (let i = 0; i < 3; i++) {
      const again = await chunked([JSON.stringify({ kind: 'get', checksum: 'none' }), transfer(1000 + i)]);
      expect(again.status).toBe(201);
    }
  });

  it('refuses an oversized request with 413 and keeps serving', async () => {
    const big = JSON.stringify({ kind: 'get', transfers: Array.from({ length: 2000 }, (_, i) => ({ source: `https://h.example/f${i}`, destination: `/tmp/f${i}` })) });
    const res = await call('POST', '/v1/jobs', big, { 'content-type': 'application/json' });
    expect(res.status).toBe(413);
    expect(res.json?.error?.code).toBe('API_PAYLOAD_TOO_LARGE');
    expect(res.json?.error?.hint).toMatch(/maxRequestBytes/);
    expect((await agent.client.health()).ok).toBe(true);
  });

  it('never echoes a rejected token back in an error', async () => {
    const token = await mintToken(tb, { scope: 'storage.read:/' });
    const res = await call('POST', '/v1/jobs', JSON.stringify({ kind: 'get', token, transfers: [{ source: 'ftp://h/x', destination: '/tmp/x' }] }), { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.json)).not.toContain(token.split('.')[1]);
  });

  it('lists jobs by state with pagination, each job once', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const { id } = await agent.client.submit({ kind: 'get', transfers: [{ source: `${tb.servers.a.url}/missing-${randomUUID()}`, destination: join(home.dir, `m${i}`) }] });
      ids.add(id);
    }
    for (const id of ids) await waitForJob(agent.client, id, finished);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await agent.client.list({ state: 'failed', limit: 2, cursor });
      expect(page.jobs.length).toBeLessThanOrEqual(2);
      seen.push(...page.jobs.map((j) => j.id));
      cursor = page.next;
    } while (cursor);
    expect(new Set(seen).size, 'no job twice').toBe(seen.length);
    for (const id of ids) expect(seen).toContain(id);
  });

  it('streams server-sent events of a job until it ends, each file\'s end (with its bytes) before the job\'s', async () => {
    const paths = await Promise.all([8 << 20, 4096, 4096].map(async (size, i) => {
      const path = `/sse-${randomUUID().slice(0, 8)}-${i}.bin`;
      await writeDataFile(tb.servers.a, path, size);
      return { path, size };
    }));
    const token = await mintToken(tb, { scope: 'storage.read:/' });
    const { id } = await agent.client.submit({ kind: 'get', token, transfers: paths.map(({ path }, i) => ({ source: `${tb.servers.a.url}${path}`, destination: join(home.dir, 'sse', `f${i}`) })) });
    const types: string[] = [];
    const ended = new Map<number, number>();
    let last;
    for await (const ev of agent.client.events(id)) {
      types.push(ev.type);
      if (ev.type === 'job') last = ev.job;
      if (ev.type === 'transfer' && ev.transfer.state === 'succeeded') {
        expect(last?.state, 'a file ends before its job').not.toBe('succeeded');
        ended.set(ev.transfer.index, ev.transfer.bytesDone);
      }
    }
    expect(types[0]).toBe('job');
    expect([...ended.entries()].sort(([x], [y]) => x - y)).toEqual(paths.map(({ size }, i) => [i, size]));
    expect(last?.state).toBe('succeeded');
    expect(last?.finishedAt).toBeDefined();
  });

  it('leaves per-transfer events out of the stream when asked (transfers=false), keeping job events to the end', async () => {
    const token = await mintToken(tb, { scope: 'storage.read:/' });
    const paths = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const path = `/sse-quiet-${randomUUID().slice(0, 8)}-${i}.bin`;
      await writeDataFile(tb.servers.a, path, 4096);
      return path;
    }));
    const { id } = await agent.client.submit({ kind: 'get', token, transfers: paths.map((p, i) => ({ source: `${tb.servers.a.url}${p}`, destination: join(home.dir, 'sse-quiet', `f${i}`) })) });
    const types = new Set<string>();
    let last;
    for await (const ev of agent.client.events(id, undefined, { transfers: 'false' })) {
      types.add(ev.type);
      if (ev.type === 'job') last = ev.job;
    }
    expect(types.has('transfer')).toBe(false);
    expect(types.has('job')).toBe(true);
    expect(last?.state).toBe('succeeded');
    expect(last?.counts.succeeded).toBe(20);
  });
});

describe('one agent per socket', () => {
  it('keeps the socket and the database private (0600) in a 0700 directory', () => {
    expect(statSync(home.socket).mode & 0o777).toBe(0o600);
    expect(statSync(join(home.socket, '..')).mode & 0o777).toBe(0o700);
    expect(statSync(join(home.stateDir, 'agent.db')).mode & 0o777).toBe(0o600);
  });

  it('a second `agent start` starts no second daemon', async () => {
    const res = await petrel(home, ['agent', 'start', '--json']);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ started: false, pid: agent.child.pid });
  });

  it('a second `agent run` on a live socket exits with a clear message', async () => {
    const res = await petrel(home, ['agent', 'run']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/already running/);
    expect((await agent.client.health()).pid).toBe(agent.child.pid);
  });

  it('refuses a second agent on the same database, even on another socket', async () => {
    const res = await petrel(home, ['agent', 'run'], { env: { PETREL_SOCKET: join(home.dir, 'other.sock') } });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('another petrel agent is using the job database');
    expect((await agent.client.health()).pid).toBe(agent.child.pid);
  });

  it('removes a stale socket left by a dead agent and starts', async () => {
    const h = await makeHome(tb);
    onTestFinished(() => h.cleanup());
    mkdirSync(join(h.socket, '..'), { recursive: true, mode: 0o700 });
    // A process that listens on the socket path and is killed -9 leaves the socket file behind.
    const holder = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(h.socket)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => holder.stdout.once('data', r));
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    expect(statSync(h.socket).isSocket(), 'a stale socket is left').toBe(true);

    const res = await petrel(h, ['agent', 'start', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).started).toBe(true);
    expect((await petrel(h, ['agent', 'stop'])).code).toBe(0);
  });

  it('stops on SIGTERM, removing its socket', async () => {
    const h = await makeHome(tb);
    onTestFinished(() => h.cleanup());
    const a = await startAgent(h);
    expect(await a.stop()).toBe(0);
    expect(() => statSync(h.socket)).toThrow();
  });

  it('accepts a listening socket handed over by systemd socket activation (LISTEN_FDS)', async () => {
    const h = await makeHome(tb);
    onTestFinished(() => h.cleanup());
    mkdirSync(join(h.socket, '..'), { recursive: true, mode: 0o700 });
    // systemd's own tool: it listens, and on the first connection starts the agent with the socket as fd 3.
    const activator = spawn('systemd-socket-activate', ['-l', h.socket, process.execPath, CLI, 'agent', 'run'], { env: h.env, stdio: 'ignore', detached: true });
    onTestFinished(() => {
      try {
        process.kill(-(activator.pid as number), 'SIGTERM');
      } catch {
        // already gone
      }
    });
    const { createAgentClient } = await import('../../src/api/client.js');
    const client = createAgentClient({ socket: h.socket });
    onTestFinished(() => client.close());
    await expect.poll(() => statSync(h.socket, { throwIfNoEntry: false })?.isSocket(), { timeout: 10_000 }).toBe(true);
    const health = await client.health();
    expect(health.socketActivated).toBe(true);
  });
});
