// get, put and copy -r of a three-level tree on the test bed's XRootD servers, compared byte for byte.
import { copyFile, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { makeHome, petrel, type Home } from '../helpers/agent.js';
import { mintToken, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');
const { a, b } = tb.servers;
const TREE: Record<string, number> = { 'a.bin': 100_000, 'b.txt': 7, 'sub/c.bin': 1_048_576, 'sub/deeper/d.bin': 3, 'sub/deeper/e f.bin': 4096 };

let home: Home;
let tokenFile: string;
beforeAll(async () => {
  home = await makeHome(tb);
  tokenFile = join(home.dir, 'token');
  await writeFile(tokenFile, await mintToken(tb, { scope: 'storage.read:/rt storage.create:/rt storage.modify:/rt', expiresIn: 3600 }), { mode: 0o600 });
  for (const [rel, size] of Object.entries(TREE)) await writeDataFile(a, `/rt/run/${rel}`, size);
});
afterAll(async () => {
  await petrel(home, ['agent', 'stop']);
  await home.cleanup();
});

async function sameTree(root: string, under: string): Promise<void> {
  for (const rel of Object.keys(TREE)) {
    expect(await readFile(join(root, under, rel)), rel).toEqual(await readFile(join(a.dataDir, 'rt/run', rel)));
  }
}

describe('-r', () => {
  it('get -r URL/dir DEST puts the tree under DEST/dir; URL/dir/ puts its contents into DEST', async () => {
    const named = await petrel(home, ['get', '-r', '-q', `${a.url}/rt/run`, join(home.dir, 'one'), '--token', tokenFile]);
    expect(named.code, named.stderr).toBe(0);
    await sameTree(join(home.dir, 'one'), 'run');
    const contents = await petrel(home, ['get', '-r', '-q', `${a.url}/rt/run/`, join(home.dir, 'two'), '--token', tokenFile]);
    expect(contents.code, contents.stderr).toBe(0);
    await sameTree(join(home.dir, 'two'), '');
  });

  it('put -r makes the remote directories and uploads the tree; a symbolic link is not followed', async () => {
    const local = join(home.dir, 'one', 'run');
    await mkdir(join(home.dir, 'outside'), { recursive: true });
    await writeFile(join(home.dir, 'outside', 'secret'), 'not for the storage');
    await symlink(join(home.dir, 'outside'), join(local, 'link'));
    const res = await petrel(home, ['put', '-r', '--async', '--wait', '-q', local, `${b.url}/rt/up/`, '--token', tokenFile]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    for (const rel of Object.keys(TREE)) expect(await readFile(join(b.dataDir, 'rt/up/run', rel)), rel).toEqual(await readFile(join(a.dataDir, 'rt/run', rel)));
    await expect(readFile(join(b.dataDir, 'rt/up/run/link/secret'))).rejects.toThrow();
  });

  it('copy -r lists the source and makes one COPY per file', async () => {
    const res = await petrel(home, ['copy', '-r', '--async', '--wait', '-q', `${a.url}/rt/run/`, `${b.url}/rt/copied/`, '--token', tokenFile]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/succeeded: 5 transfers/);
    for (const rel of Object.keys(TREE)) expect(await readFile(join(b.dataDir, 'rt/copied', rel)), rel).toEqual(await readFile(join(a.dataDir, 'rt/run', rel)));
  });

  it('--skip-existing sends only what is missing; --sync also replaces a file that changed at the source', async () => {
    const dest = join(home.dir, 'half');
    await mkdir(join(dest, 'sub'), { recursive: true });
    await copyFile(join(a.dataDir, 'rt/run/a.bin'), join(dest, 'a.bin'));
    await copyFile(join(a.dataDir, 'rt/run/sub/c.bin'), join(dest, 'sub/c.bin'));
    const before = (await stat(join(dest, 'sub/c.bin'))).mtimeMs;
    const res = await petrel(home, ['get', '-r', '--skip-existing', '--json', `${a.url}/rt/run/`, dest, '--token', tokenFile]);
    expect(res.code, res.stderr).toBe(0);
    const job = JSON.parse(res.stdout) as { counts: { succeeded: number; skipped: number }; bytesDone: number };
    expect(job.counts).toMatchObject({ succeeded: 3, skipped: 2 });
    // Only the missing half went over the wire: 7 + 3 + 4096 bytes, not the 1 MiB already there.
    expect(job.bytesDone).toBe(7 + 3 + 4096);
    expect((await stat(join(dest, 'sub/c.bin'))).mtimeMs).toBe(before);
    await sameTree(dest, '');

    // The same length, other bytes: only the checksum tells them apart.
    await writeDataFile(a, '/rt/run/b.txt', Buffer.from('changed'));
    const sync = await petrel(home, ['get', '-r', '--sync', '--json', `${a.url}/rt/run/`, dest, '--token', tokenFile]);
    expect(sync.code, sync.stderr).toBe(0);
    expect((JSON.parse(sync.stdout) as { counts: { succeeded: number; skipped: number } }).counts).toMatchObject({ succeeded: 1, skipped: 4 });
    expect(await readFile(join(dest, 'b.txt'), 'utf8')).toBe('changed');
    await writeDataFile(a, '/rt/run/b.txt', 7);
  });

  it('-r on a file fails the job, saying to leave -r out', async () => {
    const res = await petrel(home, ['get', '-r', `${a.url}/rt/run/a.bin`, join(home.dir, 'three'), '--token', tokenFile]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(`${a.url}/rt/run/a.bin is a file, not a directory`);
    expect(res.stdout).toContain('leave out -r');
  });

  it('put -r --follow-symlinks uploads what a link in the tree points to', async () => {
    const local = join(home.dir, 'linked');
    await mkdir(join(local, 'real'), { recursive: true });
    await writeFile(join(local, 'real', 'x.txt'), 'in the tree');
    await mkdir(join(home.dir, 'elsewhere'), { recursive: true });
    await writeFile(join(home.dir, 'elsewhere', 'y.txt'), 'through the link');
    await symlink(join(home.dir, 'elsewhere'), join(local, 'link'));
    // A link back up the tree is walked once, not forever.
    await symlink(local, join(local, 'real', 'loop'));
    const res = await petrel(home, ['put', '-r', '--follow-symlinks', '--json', `${local}/`, `${b.url}/rt/followed/`, '--token', tokenFile]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect((JSON.parse(res.stdout) as { counts: { succeeded: number } }).counts.succeeded).toBe(2);
    expect(await readFile(join(b.dataDir, 'rt/followed/real/x.txt'), 'utf8')).toBe('in the tree');
    expect(await readFile(join(b.dataDir, 'rt/followed/link/y.txt'), 'utf8')).toBe('through the link');
  });
});
