// -r jobs listed by the agent: the job shows `listing` while its first files already move, a
// listing error fails it with the storage's words, a stop mid-listing resumes without queuing a
// file twice. The storage is a stand-in (test/helpers/dav-tree.ts): XRootD cannot be made to hold
// one directory's listing, or to refuse it.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { JobView } from '../../src/api/index.js';
import { finished, makeHome, petrel, startAgent, waitForJob, type Home, type RunningAgent } from '../helpers/agent.js';
import { davTree } from '../helpers/dav-tree.js';

const tb = inject('testbed');

const TREE = {
  '/t/run/a.bin': randomBytes(1000),
  '/t/run/b.bin': randomBytes(2000),
  '/t/run/sub/c.bin': randomBytes(10),
  '/t/run/sub/deeper/d.bin': randomBytes(20),
};

let home: Home;
let agent: RunningAgent | undefined;
beforeAll(async () => {
  home = await makeHome(tb);
  return () => home.cleanup();
});
afterEach(async () => {
  await agent?.stop();
  agent = undefined;
});

async function submit(args: string[]): Promise<string> {
  const res = await petrel(home, [...args, '--async']);
  expect(res.code, res.stdout + res.stderr).toBe(0);
  return res.stdout.trim();
}

async function sameFiles(dir: string): Promise<void> {
  for (const [path, data] of Object.entries(TREE)) expect(await readFile(join(dir, path.slice('/t/'.length))), path).toEqual(data);
}

describe('-r jobs listed in the agent', () => {
  it('an --async job shows listing while its first files already download, then gets the rest', async () => {
    const dav = await davTree(tb, TREE);
    const release = dav.hold('/t/run/sub/');
    agent = await startAgent(home);
    const dest = join(home.dir, 'streamed');
    const id = await submit(['get', '-r', `${dav.url}/t/run`, dest]);
    const during = await waitForJob(agent.client, id, (j) => j.counts.succeeded === 2);
    // The root's two files are done while its subdirectory is still being listed.
    expect(during.state).toBe('listing');
    expect(during.listing).toEqual({ directories: 1, files: 2 });
    const status = await petrel(home, ['job', 'status', id]);
    expect(status.stdout).toMatch(new RegExp(`^${id} +get +listing +2/2 done`));
    expect(status.stdout).toContain('listing: 1 directory listed, 2 files found so far');
    release();
    const done = await waitForJob(agent.client, id, finished);
    expect(done.state).toBe('succeeded');
    expect(done.counts).toMatchObject({ total: 4, succeeded: 4 });
    expect(done.listing).toBeUndefined();
    await sameFiles(dest);
  });

  it('a listing the storage refuses fails the job with its words; what was listed ran; retry lists again and fetches only the rest', async () => {
    const dav = await davTree(tb, TREE);
    dav.refuse('/t/run/sub/', 403, 'policy forbids listing sub', 1);
    agent = await startAgent(home);
    const dest = join(home.dir, 'refused');
    const id = await submit(['get', '-r', `${dav.url}/t/run/`, dest]);
    const wait = await petrel(home, ['job', 'wait', id]);
    expect(wait.code).toBe(1);
    expect(wait.stdout).toContain('2 of 2 transfers succeeded, 0 failed');
    expect(wait.stdout).toContain(`listing ${dav.url}/t/run/sub/: 403 policy forbids listing sub`);
    const failed = await agent.client.job(id);
    expect(failed).toMatchObject({ state: 'failed', error: { code: 'TRANSFER_DENIED' } });

    const retry = await petrel(home, ['job', 'retry', id]);
    expect(retry.stdout).toContain('its trees are listed again');
    const done = await waitForJob(agent.client, id, finished);
    expect(done.state, JSON.stringify(done)).toBe('succeeded');
    expect(done.counts).toMatchObject({ total: 4, succeeded: 4 });
    // Each file was fetched once: the second listing passed over what the first had queued.
    expect(dav.gets.sort()).toEqual(Object.keys(TREE).sort());
    const all = Object.fromEntries(Object.entries(TREE).map(([p, d]) => [p.replace('/t/run/', '/t/'), d]));
    for (const [path, data] of Object.entries(all)) expect(await readFile(join(dest, path.slice('/t/'.length)))).toEqual(data);
  });

  it('an agent stopped mid-listing lists again at its start, queuing no file twice', async () => {
    const dav = await davTree(tb, TREE);
    const release = dav.hold('/t/run/sub/deeper/');
    agent = await startAgent(home);
    const dest = join(home.dir, 'restarted');
    const id = await submit(['get', '-r', `${dav.url}/t/run`, dest]);
    await waitForJob(agent.client, id, (j) => j.counts.succeeded === 3);
    expect(await agent.stop()).toBe(0);
    release();
    agent = await startAgent(home);
    const done = await waitForJob(agent.client, id, finished);
    expect(done.state).toBe('succeeded');
    expect(done.counts).toMatchObject({ total: 4, succeeded: 4 });
    expect(dav.gets.sort()).toEqual(Object.keys(TREE).sort());
    await sameFiles(dest);
  });

  it('a job cancelled while listing stops listing and fetches nothing more', async () => {
    const dav = await davTree(tb, TREE);
    const release = dav.hold('/t/run/sub/');
    agent = await startAgent(home);
    const id = await submit(['get', '-r', `${dav.url}/t/run`, join(home.dir, 'cancelled')]);
    await waitForJob(agent.client, id, (j) => j.counts.succeeded === 2);
    const cancel = await petrel(home, ['job', 'cancel', id, '--json']);
    expect((JSON.parse(cancel.stdout) as JobView).state).toBe('cancelled');
    release();
    await new Promise((r) => setTimeout(r, 300));
    expect(dav.listings.filter((p) => p.startsWith('/t/run/sub/deeper'))).toEqual([]);
    expect(dav.gets).toHaveLength(2);
    expect((await agent.client.job(id)).counts).toMatchObject({ total: 2, succeeded: 2 });
  });

  it('two trees that would write one file fail the job, naming both', async () => {
    const dav = await davTree(tb, { '/t/x/same.bin': randomBytes(5), '/t/y/same.bin': randomBytes(6) });
    agent = await startAgent(home);
    const id = await submit(['get', '-r', `${dav.url}/t/x/`, `${dav.url}/t/y/`, join(home.dir, 'clash')]);
    const done = await waitForJob(agent.client, id, finished);
    expect(done.state).toBe('failed');
    expect(done.error?.message).toBe(`${dav.url}/t/x/same.bin and ${dav.url}/t/y/same.bin would both be written to ${join(home.dir, 'clash', 'same.bin')}`);
  });

  it('a tree that is not there fails the job with the storage\'s 404 (in the foreground too)', async () => {
    const dav = await davTree(tb, { '/t/full/f.bin': randomBytes(5) });
    const res = await petrel(home, ['get', '-r', `${dav.url}/t/full/none/`, join(home.dir, 'nothing')]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(`listing ${dav.url}/t/full/none/: 404`);
  });
});
