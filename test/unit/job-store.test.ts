import { statSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { describe, expect, it, onTestFinished } from 'vitest';
import { openDatabase, type OpenDatabase } from '../../src/jobs/database.js';
import type { TransferRow } from '../../src/jobs/schema.js';
import { createJobStore, type JobStore, type NewTransfer } from '../../src/jobs/store.js';

const HOST_A = 'https://a.example.org:443';
const HOST_B = 'https://b.example.org:1094';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'petrel-store-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A real job database file in a fresh temp dir, closed and removed when the test ends. */
async function openStore(): Promise<{ store: JobStore; database: OpenDatabase; path: string }> {
  const path = join(await tempDir(), 'state', 'jobs.db');
  const database = openDatabase(path);
  onTestFinished(() => {
    if (database.sqlite.open) database.close();
  });
  return { store: createJobStore(database.db), database, path };
}

/** A database file migrated up to, not including, migration `tag` (e.g. '0004'), open for writing rows as an older agent did. */
async function databaseBefore(tag: string): Promise<{ path: string; before: Database.Database }> {
  const dir = await tempDir();
  const old = join(dir, `migrations-before-${tag}`);
  await cp(join(import.meta.dirname, '..', '..', 'migrations'), old, { recursive: true });
  const journal = JSON.parse(await readFile(join(old, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string }[] };
  journal.entries = journal.entries.filter((e) => e.tag < tag);
  await writeFile(join(old, 'meta', '_journal.json'), JSON.stringify(journal));
  const path = join(dir, 'jobs.db');
  const before = new Database(path);
  migrate(drizzle(before), { migrationsFolder: old });
  return { path, before };
}

function transfersFor(n: number, host = HOST_A, prefix = 'f'): NewTransfer[] {
  return Array.from({ length: n }, (_, i) => ({
    source: `${host.replace(/:\d+$/, '')}/store/${prefix}${i}.root`,
    destination: `/data/${prefix}${i}.root`,
    host,
  }));
}

function newJob(store: JobStore, n = 1, opts: { host?: string; now?: number; token?: string; prefix?: string } = {}) {
  return store.createJob({ kind: 'get', transfers: transfersFor(n, opts.host, opts.prefix), token: opts.token, options: { checksum: 'adler32' } }, opts.now);
}

function transfersOf(store: JobStore, jobId: string): TransferRow[] {
  return store.listTransfers(jobId, { limit: 1_000_000 }).rows;
}

function transferAt(store: JobStore, jobId: string, idx: number): TransferRow {
  const t = transfersOf(store, jobId).find((r) => r.idx === idx);
  if (!t) throw new Error(`job ${jobId} has no transfer ${idx}`);
  return t;
}

const FAIL = { code: 'TRANSFER_DENIED' as const, message: 'permission denied', hint: 'check the token scope' };

describe('openDatabase', () => {
  it('creates the database file with mode 0600', async () => {
    const { path } = await openStore();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('creates its WAL side files with mode 0600 too', async () => {
    const { path, store } = await openStore();
    newJob(store);
    for (const side of ['-wal', '-shm']) expect(statSync(path + side).mode & 0o777, side).toBe(0o600);
  });

  it('creates a missing parent directory with mode 0700', async () => {
    const { path } = await openStore();
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
  });

  it('keeps jobs and transfers across close and reopen', async () => {
    const { store, database, path } = await openStore();
    const job = newJob(store, 3, { token: 'tok-1' });
    store.markRunning(transferAt(store, job.id, 0), 'run-1');
    database.close();

    const again = openDatabase(path);
    onTestFinished(() => again.close());
    const reopened = createJobStore(again.db);
    expect(reopened.getJob(job.id)).toMatchObject({ id: job.id, kind: 'get', state: 'running', token: 'tok-1', transferCount: 3 });
    expect(reopened.counts(job.id)).toMatchObject({ total: 3, running: 1, queued: 2 });
  });
});

describe('createJob', () => {
  it('stores a queued job with its transfers in order', async () => {
    const { store } = await openStore();
    const job = newJob(store, 3, { now: 1_000 });
    expect(store.getJob(job.id)).toMatchObject({ state: 'queued', createdAt: 1_000, transferCount: 3, finishedAt: null });
    expect(transfersOf(store, job.id).map((t) => [t.idx, t.destination, t.state])).toEqual([
      [0, '/data/f0.root', 'queued'],
      [1, '/data/f1.root', 'queued'],
      [2, '/data/f2.root', 'queued'],
    ]);
  });

  it('stores 10,000 transfers in one call', async () => {
    const { store } = await openStore();
    const job = newJob(store, 10_000);
    expect(store.counts(job.id)).toMatchObject({ total: 10_000, queued: 10_000 });
    const rows = transfersOf(store, job.id);
    expect(new Set(rows.map((r) => r.idx)).size).toBe(10_000);
    expect(rows.at(-1)?.idx).toBe(9_999);
    expect(rows.at(-1)?.destination).toBe('/data/f9999.root');
  });

  it('gives each job a distinct id', async () => {
    const { store } = await openStore();
    const ids = new Set(Array.from({ length: 200 }, () => newJob(store).id));
    expect(ids.size).toBe(200);
  });
});

describe('a job received a batch at a time', () => {
  const header = { kind: 'get' as const, options: { checksum: 'adler32' as const } };
  const rowsOf = (database: OpenDatabase, jobId: string) => database.sqlite.prepare('SELECT count(*) FROM transfers WHERE job_id = ?').pluck().get(jobId) as number;

  it('stays out of the queue and out of sight until it is complete, then is queued whole', async () => {
    const { store } = await openStore();
    const id = store.openJob(header, 1_000);
    expect(store.addTransfers(id, 0, transfersFor(2))).toBeUndefined();
    expect(store.addTransfers(id, 2, transfersFor(3).slice(2))).toBeUndefined();
    expect(store.getJob(id)).toBeUndefined();
    expect(store.listJobs({ limit: 10 }).rows).toEqual([]);
    expect(store.nextRunnable({ now: Date.now(), limit: 10 })).toEqual([]);
    expect(store.unfinishedJobIds()).toEqual([]);
    expect(store.queueCounts()).toEqual({ running: 0, queued: 0, waiting: 0 });

    const job = store.completeJob(id, 3, 2_000);
    expect(job).toMatchObject({ id, state: 'queued', createdAt: 2_000, transferCount: 3 });
    expect(store.counts(id)).toMatchObject({ total: 3, queued: 3 });
    expect(store.byteTotals(id)).toEqual({ bytesDone: 0, bytesTotal: null });
    expect(store.listJobs({ limit: 10 }).rows.map((r) => r.id)).toEqual([id]);
    expect(store.nextRunnable({ now: Date.now(), limit: 10 }).map((t) => t.idx)).toEqual([0, 1, 2]);
  });

  it('refuses a destination the job already writes, naming both transfers, and keeps that whole batch out', async () => {
    const { store, database } = await openStore();
    const id = store.openJob(header);
    const [a, b, c] = transfersFor(3);
    expect(store.addTransfers(id, 0, [a!, b!])).toBeUndefined();
    // The earlier writer in an earlier batch...
    expect(store.addTransfers(id, 2, [c!, { ...a!, source: 'https://a.example.org/other' }])).toEqual({ index: 3, earlier: 0 });
    expect(rowsOf(database, id)).toBe(2);
    // ...and in the same batch.
    expect(store.addTransfers(id, 2, [c!, { ...c!, source: 'https://a.example.org/again' }])).toEqual({ index: 3, earlier: 2 });
    expect(rowsOf(database, id)).toBe(2);
    // Another job may write the same paths.
    const other = store.openJob(header);
    expect(store.addTransfers(other, 0, [a!, b!, c!])).toBeUndefined();
  });

  it('opens a database made before destinations had to differ: of two transfers writing one, the later fails if still to run', async () => {
    const { path, before } = await databaseBefore('0007');
    before.exec(`INSERT INTO jobs (id, kind, state, created_at, options, transfer_count, queued_count, succeeded_count, failed_count, bytes_unknown) VALUES ('j1', 'get', 'running', 1, '{}', 5, 2, 2, 1, 5);
      INSERT INTO transfers (job_id, idx, source, destination, host, state, error_code) VALUES
        ('j1', 0, 'https://a/0', '/d/x', 'https://a:443', 'succeeded', NULL),
        ('j1', 1, 'https://a/1', '/d/x', 'https://a:443', 'succeeded', NULL),
        ('j1', 2, 'https://a/2', '/d/x', 'https://a:443', 'queued', NULL),
        ('j1', 3, 'https://a/3', '/d/y', 'https://a:443', 'queued', NULL),
        ('j1', 4, 'https://a/4', '/d/y', 'https://a:443', 'failed', 'TRANSFER_TIMEOUT');`);
    before.close();

    const database = openDatabase(path);
    onTestFinished(() => database.close());
    const store = createJobStore(database.db);
    const rows = () => transfersOf(store, 'j1').map((t) => [t.idx, t.destination, t.state, t.errorMessage]);
    expect(rows()).toEqual([
      [0, '/d/x', 'succeeded', null],
      [1, '/d/x (transfer 1, a duplicate)', 'succeeded', null],
      [2, '/d/x (transfer 2, a duplicate)', 'failed', 'transfer 0 of this job writes the same destination'],
      [3, '/d/y', 'queued', null],
      [4, '/d/y (transfer 4, a duplicate)', 'failed', 'transfer 3 of this job writes the same destination'],
    ]);
    expect(store.counts('j1')).toMatchObject({ queued: 1, succeeded: 2, failed: 2 });
    // A retry of the job leaves the set-apart ones alone: they would write to the new names.
    store.markRunning(transferAt(store, 'j1', 3), 'run-1');
    store.finishTransfer(transferAt(store, 'j1', 3).id, { move: 'fail', bytesDone: 0, bytesTotal: null, error: FAIL });
    expect(store.finishJobIfDone('j1')?.state).toBe('failed');
    expect(store.retryJob('j1')).toBe(1);
    expect(rows().filter(([, , state]) => state === 'queued')).toEqual([[3, '/d/y', 'queued', null]]);
  });

  it('is taken back with its transfers when the submission fails, and at start when an agent stopped while receiving it', async () => {
    const { store, database, path } = await openStore();
    const refused = store.openJob(header);
    store.addTransfers(refused, 0, transfersFor(700));
    store.dropJob(refused);
    expect(rowsOf(database, refused)).toBe(0);

    const kept = newJob(store, 2);
    const cut = store.openJob(header);
    store.addTransfers(cut, 0, transfersFor(500, HOST_A, 'cut'));
    database.close();

    const again = openDatabase(path);
    onTestFinished(() => again.close());
    const reopened = createJobStore(again.db);
    expect(rowsOf(again, cut)).toBe(500);
    expect(reopened.dropIncompleteJobs()).toBe(1);
    expect(rowsOf(again, cut)).toBe(0);
    expect(again.sqlite.prepare('SELECT count(*) FROM jobs').pluck().get()).toBe(1);
    expect(reopened.counts(kept.id)).toMatchObject({ total: 2, queued: 2 });
    // A completed job is not taken back.
    reopened.dropJob(kept.id);
    expect(rowsOf(again, kept.id)).toBe(2);
  });
});

describe('nextRunnable', () => {
  it('returns queued transfers oldest first, with their job’s kind, token and options', async () => {
    const { store } = await openStore();
    const first = newJob(store, 2, { token: 't1' });
    const second = newJob(store, 1);
    const rows = store.nextRunnable({ now: Date.now(), limit: 10 });
    expect(rows.map((r) => [r.jobId, r.idx])).toEqual([
      [first.id, 0],
      [first.id, 1],
      [second.id, 0],
    ]);
    expect(rows[0]).toMatchObject({ kind: 'get', token: 't1' });
    expect(JSON.parse(rows[0]?.options ?? '')).toEqual({ checksum: 'adler32' });
  });

  it('returns at most `limit` transfers', async () => {
    const { store } = await openStore();
    newJob(store, 5);
    expect(store.nextRunnable({ now: Date.now(), limit: 2 })).toHaveLength(2);
  });

  it('skips transfers that are running or finished', async () => {
    const { store } = await openStore();
    const job = newJob(store, 3);
    store.markRunning(transferAt(store, job.id, 0), 'run-1');
    store.finishTransfer(transferAt(store, job.id, 1).id, { move: 'succeed', bytesDone: 1, bytesTotal: 1 });
    expect(store.nextRunnable({ now: Date.now(), limit: 10 }).map((r) => r.idx)).toEqual([2]);
  });

  it('holds back a transfer until its notBefore', async () => {
    const { store } = await openStore();
    const job = newJob(store, 1);
    const t = transferAt(store, job.id, 0);
    store.markRunning(t, 'run-1', 1_000);
    store.requeueTransfer(t.id, { notBefore: 5_000, bytesDone: 0, bytesTotal: null });
    expect(store.nextRunnable({ now: 4_999, limit: 10 })).toEqual([]);
    expect(store.nextRunnable({ now: 5_000, limit: 10 }).map((r) => r.id)).toEqual([t.id]);
    expect(store.nextDueAt(4_000)).toBe(5_000);
    expect(store.nextDueAt(5_000), 'a transfer already due needs no timer').toBeUndefined();
  });

  it('skips transfers to busy hosts', async () => {
    const { store } = await openStore();
    newJob(store, 2, { host: HOST_A, prefix: 'a' });
    newJob(store, 2, { host: HOST_B, prefix: 'b' });
    const rows = store.nextRunnable({ now: Date.now(), limit: 10, room: (h) => (h === HOST_A ? 0 : 10) });
    expect(rows.map((r) => r.host)).toEqual([HOST_B, HOST_B]);
  });

  it('gives each host at most its room, oldest first across hosts', async () => {
    const { store } = await openStore();
    newJob(store, 3, { host: HOST_A, prefix: 'a' });
    newJob(store, 3, { host: HOST_B, prefix: 'b' });
    const rows = store.nextRunnable({ now: Date.now(), limit: 4, room: (h) => (h === HOST_A ? 1 : 5) });
    expect(rows.map((r) => [r.host, r.idx])).toEqual([[HOST_A, 0], [HOST_B, 0], [HOST_B, 1], [HOST_B, 2]]);
  });

  it('finds the transfer of a free host queued behind 20,000 for a busy one', async () => {
    const { store } = await openStore();
    newJob(store, 20_000, { host: HOST_A, prefix: 'a' });
    newJob(store, 1, { host: HOST_B, prefix: 'b' });
    const rows = store.nextRunnable({ now: Date.now(), limit: 4, room: (h) => (h === HOST_A ? 0 : 4) });
    expect(rows.map((r) => r.host)).toEqual([HOST_B]);
  });

  it('returns nothing when every host is busy', async () => {
    const { store } = await openStore();
    newJob(store, 1, { host: HOST_A });
    newJob(store, 1, { host: HOST_B });
    expect(store.nextRunnable({ now: Date.now(), limit: 10, room: () => 0 })).toEqual([]);
  });
});

describe('sharing between hosts', () => {
  it('shares free slots between hosts in turn, though one host queued all of its work first', async () => {
    const { store } = await openStore();
    newJob(store, 50, { host: HOST_A, prefix: 'a' });
    newJob(store, 50, { host: HOST_B, prefix: 'b' });
    const rows = store.nextRunnable({ now: Date.now(), limit: 4, room: () => 4 });
    expect(rows.map((r) => [r.host, r.idx])).toEqual([[HOST_A, 0], [HOST_B, 0], [HOST_A, 1], [HOST_B, 1]]);
  });
});

describe('transfers waiting for their host', () => {
  it('parks what is queued for a host with the reason, leaves other hosts alone, and the job waits', async () => {
    const { store } = await openStore();
    const job = store.createJob({ kind: 'get', transfers: [...transfersFor(3, HOST_A, 'a'), ...transfersFor(2, HOST_B, 'b')], options: { checksum: 'adler32' } });
    expect(store.parkHost(HOST_A, 'storage a not answering since 10:00', 'it is tried again')).toEqual([job.id]);
    const rows = transfersOf(store, job.id);
    expect(rows.filter((r) => r.state === 'waiting').map((r) => r.host)).toEqual([HOST_A, HOST_A, HOST_A]);
    expect(rows.find((r) => r.host === HOST_A)).toMatchObject({ waitingReason: 'storage a not answering since 10:00', waitingHint: 'it is tried again' });
    expect(store.nextRunnable({ now: Date.now(), limit: 10 }).map((r) => r.host)).toEqual([HOST_B, HOST_B]);
    expect(store.getJob(job.id)).toMatchObject({ state: 'queued', waitingReason: 'storage a not answering since 10:00' });
    for (const r of store.nextRunnable({ now: Date.now(), limit: 10 })) store.finishTransfer(r.id, { move: 'succeed', bytesDone: 1, bytesTotal: 1 });
    store.settleJobState(job.id);
    expect(store.getJob(job.id)?.waitingCount).toBe(3);
  });

  it('opening the wallet does not resume them; a probe takes the oldest, and the host’s return all', async () => {
    const { store } = await openStore();
    const job = newJob(store, 3, { host: HOST_A });
    store.parkHost(HOST_A, 'silent', 'wait');
    expect(store.resumeWaiting()).toBe(0);
    expect(store.nextRunnable({ now: Date.now(), limit: 10 })).toEqual([]);
    expect(store.unparkOne(HOST_A)).toBe(true);
    expect(store.nextRunnable({ now: Date.now(), limit: 10 }).map((r) => r.idx)).toEqual([0]);
    expect(store.unparkHost(HOST_A)).toEqual([job.id]);
    expect(store.nextRunnable({ now: Date.now(), limit: 10 }).map((r) => r.idx)).toEqual([0, 1, 2]);
    expect(store.getJob(job.id)).toMatchObject({ state: 'queued', waitingReason: null, waitingCount: 0 });
  });

  it('fails what waited too long with the error, and the job can finish', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2, { host: HOST_A });
    store.parkHost(HOST_A, 'silent', 'wait');
    expect(store.failHost(HOST_A, { code: 'TRANSFER_TIMEOUT', message: 'gave up', hint: 'retry later' }, 9_000)).toEqual([job.id]);
    expect(transfersOf(store, job.id).map((r) => [r.state, r.errorMessage, r.finishedAt])).toEqual([
      ['failed', 'gave up', 9_000],
      ['failed', 'gave up', 9_000],
    ]);
    expect(store.finishJobIfDone(job.id)).toMatchObject({ state: 'failed' });
  });
});

describe('markRunning', () => {
  it('moves the transfer and its job to running, counting the attempt', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2);
    store.markRunning(transferAt(store, job.id, 0), 'run-1', 7_000);
    expect(transferAt(store, job.id, 0)).toMatchObject({ state: 'running', runId: 'run-1', attempts: 1, startedAt: 7_000 });
    expect(store.getJob(job.id)).toMatchObject({ state: 'running', startedAt: 7_000 });
  });

  it('keeps the job’s first start time when a second transfer starts', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2);
    store.markRunning(transferAt(store, job.id, 0), 'run-1', 7_000);
    store.markRunning(transferAt(store, job.id, 1), 'run-1', 9_000);
    expect(store.getJob(job.id)?.startedAt).toBe(7_000);
  });

  it('does not revive a cancelled job', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2);
    const t = transferAt(store, job.id, 0);
    store.cancelJob(job.id);
    store.markRunning(t, 'run-1');
    expect(store.getJob(job.id)?.state).toBe('cancelled');
  });
});

describe('finishJobIfDone', () => {
  it('returns undefined while a transfer is still queued or running', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2);
    store.markRunning(transferAt(store, job.id, 0), 'run-1');
    store.finishTransfer(transferAt(store, job.id, 1).id, { move: 'succeed', bytesDone: 1, bytesTotal: 1 });
    expect(store.finishJobIfDone(job.id)).toBeUndefined();
    expect(store.getJob(job.id)?.finishedAt).toBeNull();
  });

  it('marks the job succeeded when every transfer succeeded', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2);
    for (const t of transfersOf(store, job.id)) store.finishTransfer(t.id, { move: 'succeed', bytesDone: 5, bytesTotal: 5 });
    expect(store.finishJobIfDone(job.id, 9_000)).toMatchObject({ state: 'succeeded', finishedAt: 9_000, errorCode: null });
    expect(store.getJob(job.id)).toMatchObject({ state: 'succeeded', finishedAt: 9_000 });
  });

  it('marks the job failed with "N of M transfers failed", the first failure’s source and code', async () => {
    const { store } = await openStore();
    const job = newJob(store, 3);
    const [t0, t1, t2] = transfersOf(store, job.id);
    store.finishTransfer(t0!.id, { move: 'succeed', bytesDone: 1, bytesTotal: 1 });
    store.finishTransfer(t1!.id, { move: 'fail', bytesDone: 0, bytesTotal: null, error: FAIL });
    store.finishTransfer(t2!.id, { move: 'fail', bytesDone: 0, bytesTotal: null, error: { code: 'TRANSFER_NOT_FOUND', message: 'no such file' } });
    const done = store.finishJobIfDone(job.id);
    expect(done).toMatchObject({ state: 'failed', errorCode: 'TRANSFER_DENIED', errorHint: FAIL.hint });
    expect(done?.errorMessage).toContain('2 of 3 transfers failed');
    expect(done?.errorMessage).toContain(t1!.source);
    expect(done?.errorMessage).toContain('permission denied');
    expect(store.getJob(job.id)?.errorMessage).toBe(done?.errorMessage);
  });

  it('gives a one-transfer job the transfer’s own message', async () => {
    const { store } = await openStore();
    const job = newJob(store, 1);
    store.finishTransfer(transferAt(store, job.id, 0).id, { move: 'fail', bytesDone: 0, bytesTotal: null, error: FAIL });
    expect(store.finishJobIfDone(job.id)).toMatchObject({ state: 'failed', errorCode: FAIL.code, errorMessage: FAIL.message });
  });

  it('finishes a job only once', async () => {
    const { store } = await openStore();
    const job = newJob(store, 1);
    store.finishTransfer(transferAt(store, job.id, 0).id, { move: 'succeed', bytesDone: 1, bytesTotal: 1 });
    expect(store.finishJobIfDone(job.id, 1_000)).toBeDefined();
    expect(store.finishJobIfDone(job.id, 2_000)).toBeUndefined();
    expect(store.getJob(job.id)?.finishedAt).toBe(1_000);
  });

  it('returns undefined for an unknown job', async () => {
    const { store } = await openStore();
    expect(store.finishJobIfDone('nosuchjob0')).toBeUndefined();
  });
});

describe('cancelJob', () => {
  it('cancels queued transfers and reports running ones', async () => {
    const { store } = await openStore();
    const job = newJob(store, 3);
    const running = transferAt(store, job.id, 0);
    store.markRunning(running, 'run-1');
    const res = store.cancelJob(job.id, 4_000);
    expect(res?.job.state).toBe('cancelled');
    expect(res?.running).toEqual([running.id]);
    expect(transfersOf(store, job.id).map((t) => t.state)).toEqual(['running', 'cancelled', 'cancelled']);
    expect(transferAt(store, job.id, 1).finishedAt).toBe(4_000);
    expect(store.getJob(job.id)?.state).toBe('cancelled');
  });

  it('lists queued transfers that ran before as interrupted', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2);
    const t = transferAt(store, job.id, 1);
    store.markRunning(t, 'run-1');
    store.requeueTransfer(t.id, { notBefore: 0, bytesDone: 10, bytesTotal: 100, error: FAIL });
    expect(store.cancelJob(job.id)?.interrupted.map((r) => r.id)).toEqual([t.id]);
  });

  it('leaves the job unfinished until its running transfers end, then finishes it cancelled', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2);
    const running = transferAt(store, job.id, 0);
    store.markRunning(running, 'run-1');
    store.cancelJob(job.id);
    expect(store.finishJobIfDone(job.id)).toBeUndefined();
    store.finishTransfer(running.id, { move: 'stop', bytesDone: 0, bytesTotal: null });
    expect(store.finishJobIfDone(job.id)?.state).toBe('cancelled');
  });

  it('changes nothing on a finished job', async () => {
    const { store } = await openStore();
    const job = newJob(store, 1);
    store.finishTransfer(transferAt(store, job.id, 0).id, { move: 'succeed', bytesDone: 1, bytesTotal: 1 });
    store.finishJobIfDone(job.id);
    expect(store.cancelJob(job.id)).toMatchObject({ job: { state: 'succeeded' }, running: [], interrupted: [] });
    expect(store.getJob(job.id)?.state).toBe('succeeded');
  });

  it('returns undefined for an unknown job', async () => {
    const { store } = await openStore();
    expect(store.cancelJob('nosuchjob0')).toBeUndefined();
  });

  it('takes the cancelled transfers out of the queue', async () => {
    const { store } = await openStore();
    const job = newJob(store, 3);
    store.cancelJob(job.id);
    expect(store.nextRunnable({ now: Date.now(), limit: 10 })).toEqual([]);
  });
});

describe('retryJob', () => {
  it('re-queues the failed transfers of a finished job and reopens the job', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2);
    const [ok, bad] = transfersOf(store, job.id);
    store.markRunning(bad!, 'run-1');
    store.finishTransfer(ok!.id, { move: 'succeed', bytesDone: 1, bytesTotal: 1 });
    store.finishTransfer(bad!.id, { move: 'fail', bytesDone: 7, bytesTotal: 9, error: FAIL });
    store.finishJobIfDone(job.id);

    expect(store.retryJob(job.id)).toBe(1);
    expect(store.getTransfer(bad!.id)).toMatchObject({ state: 'queued', attempts: 0, notBefore: 0, errorCode: null, errorMessage: null, finishedAt: null, bytesDone: 0 });
    expect(store.getTransfer(ok!.id)?.state).toBe('succeeded');
    expect(store.getJob(job.id)).toMatchObject({ state: 'queued', finishedAt: null, errorCode: null, errorMessage: null });
    expect(store.nextRunnable({ now: Date.now(), limit: 10 }).map((r) => r.id)).toEqual([bad!.id]);
  });

  it('re-queues the transfers of a cancelled job', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2);
    store.cancelJob(job.id);
    store.finishJobIfDone(job.id);
    expect(store.retryJob(job.id)).toBe(2);
    expect(store.getJob(job.id)?.state).toBe('queued');
  });

  it('changes nothing when no transfer failed', async () => {
    const { store } = await openStore();
    const job = newJob(store, 1);
    store.finishTransfer(transferAt(store, job.id, 0).id, { move: 'succeed', bytesDone: 1, bytesTotal: 1 });
    store.finishJobIfDone(job.id, 3_000);
    expect(store.retryJob(job.id)).toBe(0);
    expect(store.getJob(job.id)).toMatchObject({ state: 'succeeded', finishedAt: 3_000 });
  });

  it('lets the re-run job finish again', async () => {
    const { store } = await openStore();
    const job = newJob(store, 1);
    const t = transferAt(store, job.id, 0);
    store.finishTransfer(t.id, { move: 'fail', bytesDone: 0, bytesTotal: null, error: FAIL });
    store.finishJobIfDone(job.id);
    store.retryJob(job.id);
    store.finishTransfer(t.id, { move: 'succeed', bytesDone: 1, bytesTotal: 1 });
    expect(store.finishJobIfDone(job.id)?.state).toBe('succeeded');
  });
});

describe('requeueOrphans', () => {
  it('re-queues transfers another run left running, so a restart resumes them', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2);
    const t = transferAt(store, job.id, 0);
    store.markRunning(t, 'run-killed');
    expect(store.requeueOrphans('run-new')).toBe(1);
    expect(store.getTransfer(t.id)).toMatchObject({ state: 'queued', runId: null, notBefore: 0 });
    expect(store.nextRunnable({ now: Date.now(), limit: 10 }).map((r) => r.id)).toContain(t.id);
  });

  it('leaves transfers of the current run alone', async () => {
    const { store } = await openStore();
    const job = newJob(store, 1);
    const t = transferAt(store, job.id, 0);
    store.markRunning(t, 'run-now');
    expect(store.requeueOrphans('run-now')).toBe(0);
    expect(store.getTransfer(t.id)?.state).toBe('running');
  });

  it('resumes after a kill -9: the reopened database re-queues what was running', async () => {
    const { store, database, path } = await openStore();
    const job = newJob(store, 3);
    store.markRunning(transferAt(store, job.id, 0), 'run-1');
    store.markRunning(transferAt(store, job.id, 1), 'run-1');
    database.close();

    const again = openDatabase(path);
    onTestFinished(() => again.close());
    const restarted = createJobStore(again.db);
    expect(restarted.requeueOrphans('run-2')).toBe(2);
    expect(restarted.counts(job.id)).toMatchObject({ queued: 3, running: 0 });
    expect(restarted.nextRunnable({ now: Date.now(), limit: 10 })).toHaveLength(3);
  });

  it('leaves finished transfers alone', async () => {
    const { store } = await openStore();
    const job = newJob(store, 1);
    const t = transferAt(store, job.id, 0);
    store.markRunning(t, 'run-old');
    store.finishTransfer(t.id, { move: 'fail', bytesDone: 0, bytesTotal: null, error: FAIL });
    expect(store.requeueOrphans('run-new')).toBe(0);
    expect(store.getTransfer(t.id)?.state).toBe('failed');
  });

  // Regression (found by this test): src/jobs/store.ts:337-343 re-queues every orphaned running transfer without looking at
  // its job, and nextRunnable (:163) does not check the job state either. A transfer that was
  // running when its job was cancelled and the agent then died (kill -9, or a cancel whose abort
  // outlived the 10 s wait in scheduler.cancel) is run again after restart, inside a cancelled job.
  it('does not bring back a transfer of a job cancelled before the crash', async () => {
    const { store } = await openStore();
    const job = newJob(store, 2);
    const t = transferAt(store, job.id, 0);
    store.markRunning(t, 'run-killed');
    store.cancelJob(job.id);
    store.requeueOrphans('run-new');
    expect(store.nextRunnable({ now: Date.now(), limit: 10 }).map((r) => r.id), 'a cancelled job’s transfer must not run again').toEqual([]);
  });
});

describe('job tallies', () => {
  /** What the counts and byte totals must be: computed from the transfer rows themselves. */
  function truth(database: OpenDatabase, jobId: string) {
    const rows = database.sqlite.prepare('SELECT state, bytes_done AS done, bytes_total AS total FROM transfers WHERE job_id = ?').all(jobId) as { state: string; done: number; total: number | null }[];
    const counts: Record<string, number> = { total: rows.length, queued: 0, waiting: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, skipped: 0 };
    for (const r of rows) counts[r.state] = (counts[r.state] ?? 0) + 1;
    const bytesDone = rows.reduce((s, r) => s + r.done, 0);
    const bytesTotal = rows.some((r) => r.total === null) ? null : rows.reduce((s, r) => s + (r.total ?? 0), 0);
    return { counts, bytes: { bytesDone, bytesTotal } };
  }

  it('keep counts and bytes equal to the transfers through every kind of change, without reading the transfers', async () => {
    const { store, database } = await openStore();
    const job = newJob(store, 6);
    const other = newJob(store, 2, { prefix: 'o' });
    const check = () => {
      for (const id of [job.id, other.id]) {
        const t = truth(database, id);
        expect(store.counts(id)).toEqual(t.counts);
        expect(store.byteTotals(id)).toEqual(t.bytes);
      }
    };
    check();
    const [t0, t1, t2, t3, t4] = [0, 1, 2, 3, 4].map((i) => transferAt(store, job.id, i)) as [TransferRow, TransferRow, TransferRow, TransferRow, TransferRow];
    for (const t of [t0, t1, t2, t3, t4]) store.markRunning(t, 'run-1');
    check();
    store.saveProgress([{ id: t0.id, bytesDone: 100, bytesTotal: 1000 }, { id: t1.id, bytesDone: 5, bytesTotal: null }]);
    check();
    store.finishTransfer(t0.id, { move: 'succeed', bytesDone: 1000, bytesTotal: 1000 });
    store.finishTransfer(t1.id, { move: 'fail', bytesDone: 5, bytesTotal: 50, error: FAIL });
    store.requeueTransfer(t2.id, { notBefore: 0, bytesDone: 7, bytesTotal: 70, error: FAIL });
    store.waitTransfer(t3.id, job.id, { reason: 'no credential', hint: undefined, bytesDone: 0, bytesTotal: null });
    check();
    expect(store.resumeWaiting()).toBe(1);
    check();
    expect(store.requeueOrphans('run-2')).toBe(1); // t4, left running by run-1
    check();
    store.cancelJob(job.id);
    check();
    expect(store.finishJobIfDone(job.id)?.state).toBe('cancelled');
    expect(store.retryJob(job.id)).toBeGreaterThan(0);
    check();
    expect(store.counts(other.id)).toEqual({ total: 2, queued: 2, waiting: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, skipped: 0 });
  });

  it('are filled in for the jobs of a database made before the tallies existed', async () => {
    // A database migrated up to 0003 only, holding a job with one transfer done.
    const { path, before } = await databaseBefore('0004');
    before.exec(`INSERT INTO jobs (id, kind, state, created_at, options, transfer_count) VALUES ('j1', 'get', 'running', 1, '{}', 3);
      INSERT INTO transfers (job_id, idx, source, destination, host, state, bytes_done, bytes_total) VALUES
        ('j1', 0, 'https://a/0', '/d/0', 'https://a:443', 'succeeded', 10, 10),
        ('j1', 1, 'https://a/1', '/d/1', 'https://a:443', 'queued', 0, NULL),
        ('j1', 2, 'https://a/2', '/d/2', 'https://a:443', 'failed', 4, 8);`);
    before.close();

    const database = openDatabase(path);
    onTestFinished(() => database.close());
    const store = createJobStore(database.db);
    expect(store.counts('j1')).toEqual({ total: 3, queued: 1, waiting: 0, running: 0, succeeded: 1, failed: 1, cancelled: 0, skipped: 0 });
    expect(store.byteTotals('j1')).toEqual({ bytesDone: 14, bytesTotal: null });
  });
});

describe('listJobs', () => {
  it('lists newest first', async () => {
    const { store } = await openStore();
    const a = newJob(store, 1, { now: 1_000 });
    const b = newJob(store, 1, { now: 3_000 });
    const c = newJob(store, 1, { now: 2_000 });
    expect(store.listJobs({ limit: 10 }).rows.map((r) => r.id)).toEqual([b.id, c.id, a.id]);
  });

  it('returns every job exactly once across pages, even with equal creation times', async () => {
    const { store } = await openStore();
    const ids: string[] = [];
    for (let i = 0; i < 37; i++) ids.push(newJob(store, 1, { now: 1_000 + Math.floor(i / 5) }).id);

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = store.listJobs({ limit: 4, cursor });
      seen.push(...page.rows.map((r) => r.id));
      cursor = page.next;
      expect(++pages, 'pagination must end').toBeLessThanOrEqual(20);
    } while (cursor);

    expect(seen).toHaveLength(37);
    expect(new Set(seen)).toEqual(new Set(ids));
    expect(pages).toBe(10);
  });

  it('gives no cursor on the last page', async () => {
    const { store } = await openStore();
    for (let i = 0; i < 4; i++) newJob(store, 1, { now: i });
    expect(store.listJobs({ limit: 4 }).next).toBeUndefined();
    expect(store.listJobs({ limit: 3 }).next).toBeDefined();
  });

  it('pages through one state only', async () => {
    const { store } = await openStore();
    const cancelled: string[] = [];
    for (let i = 0; i < 9; i++) {
      const job = newJob(store, 1, { now: 100 + i });
      if (i % 2 === 0) {
        store.cancelJob(job.id);
        cancelled.push(job.id);
      }
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = store.listJobs({ state: 'cancelled', limit: 2, cursor });
      seen.push(...page.rows.map((r) => r.id));
      cursor = page.next;
    } while (cursor && seen.length < 100);
    expect(seen).toEqual([...cancelled].reverse());
  });
});
