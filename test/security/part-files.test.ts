// Security: what another local user may plant beside a download's destination (a shared group
// directory, /tmp) is never written through, resumed from, or published at the destination.
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chown, link, lstat, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { checksumOf } from '../../src/transfer/checksum.js';
import { openPartFile, publishPart, closePart } from '../../src/transfer/part-file.js';
import type { TransferTask } from '../../src/transfer/task.js';
import { makeHome, petrel } from '../helpers/agent.js';
import { tempDir as makeTempDir, testEngine, quietContext } from '../helpers/engine.js';
import { standIn } from '../helpers/stand-in.js';
import { mintToken, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');
const ctx = quietContext;
const isRoot = process.getuid?.() === 0;

const tempDir = () => makeTempDir('petrel-part-');
const engine = () => testEngine(tb);

/** Serves `data` at every path (HEAD with its adler32), and records the Range headers it was sent. */
async function dataServer(data: Buffer) {
  const ranges: (string | undefined)[] = [];
  const server = await standIn(tb, (req, res) => {
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'Content-Length': data.length, Digest: `adler32=${checksumOf('adler32', data)}` }).end();
      return;
    }
    ranges.push(req.headers.range);
    const m = /^bytes=(\d+)-(\d+)?$/.exec(req.headers.range ?? '');
    if (m) {
      const from = Number(m[1]);
      const to = m[2] === undefined ? data.length - 1 : Number(m[2]);
      res.writeHead(206, { 'Content-Range': `bytes ${from}-${to}/${data.length}`, 'Content-Length': to - from + 1 }).end(data.subarray(from, to + 1));
    } else {
      res.writeHead(200, { 'Content-Length': data.length }).end(data);
    }
  });
  return { url: server.url, ranges };
}

const get = (url: string, destination: string): TransferTask => ({ kind: 'get', source: url, destination, token: null, checksum: 'adler32' });

describe('part files planted in the destination directory', () => {
  it('a symlinked .petrel-part is not followed: the victim keeps its bytes, the destination is a regular file', async () => {
    const data = randomBytes(200_000);
    const server = await dataServer(data);
    const dir = await tempDir();
    const victim = join(dir, 'victim');
    const victimBytes = randomBytes(50_000);
    await writeFile(victim, victimBytes);
    await symlink(victim, join(dir, 'v1.petrel-part'));

    const res = await engine().run(get(`${server.url}/v1`, join(dir, 'v1')), ctx());

    expect(res.checksum?.verified).toBe(true);
    expect(server.ranges, 'nothing resumed from the victim').toEqual([undefined]);
    expect((await readFile(victim)).equals(victimBytes)).toBe(true);
    const st = await lstat(join(dir, 'v1'));
    expect(st.isSymbolicLink()).toBe(false);
    expect((await readFile(join(dir, 'v1'))).equals(data)).toBe(true);
    // The planted link is left as it was; no private part file is left behind.
    expect((await readdir(dir)).sort()).toEqual(['v1', 'v1.petrel-part', 'victim']);
    expect((await lstat(join(dir, 'v1.petrel-part'))).isSymbolicLink()).toBe(true);
  });

  it('a .petrel-part that is a hard link to another file is not resumed or written', async () => {
    const data = randomBytes(100_000);
    const server = await dataServer(data);
    const dir = await tempDir();
    const other = join(dir, 'other');
    const otherBytes = randomBytes(30_000);
    await writeFile(other, otherBytes);
    await link(other, join(dir, 'f.petrel-part'));

    await engine().run(get(`${server.url}/f`, join(dir, 'f')), ctx());

    expect(server.ranges).toEqual([undefined]);
    expect((await readFile(other)).equals(otherBytes)).toBe(true);
    expect((await readFile(join(dir, 'f'))).equals(data)).toBe(true);
  });

  it.runIf(isRoot)("a .petrel-part owned by another user is not resumed: its bytes never reach the destination", async () => {
    const data = randomBytes(100_000);
    const server = await dataServer(data);
    const dir = await tempDir();
    const planted = join(dir, 'f.petrel-part');
    await writeFile(planted, randomBytes(40_000), { mode: 0o666 });
    await chown(planted, tb.servers.a.uid, tb.servers.a.gid);

    await engine().run(get(`${server.url}/f`, join(dir, 'f')), ctx());

    expect(server.ranges).toEqual([undefined]);
    expect((await readFile(join(dir, 'f'))).equals(data)).toBe(true);
  });

  it('a FIFO planted as the .petrel-part does not hang the download', async () => {
    const data = randomBytes(10_000);
    const server = await dataServer(data);
    const dir = await tempDir();
    execFileSync('mkfifo', [join(dir, 'f.petrel-part')]);

    await engine().run(get(`${server.url}/f`, join(dir, 'f')), ctx());

    expect((await readFile(join(dir, 'f'))).equals(data)).toBe(true);
  });

  it("the user's own part file is still resumed with a Range", async () => {
    const data = randomBytes(300_000);
    const server = await dataServer(data);
    const dir = await tempDir();
    await writeFile(join(dir, 'f.petrel-part'), data.subarray(0, 120_000));

    const res = await engine().run(get(`${server.url}/f`, join(dir, 'f')), ctx());

    expect(server.ranges).toEqual([`bytes=120000-${data.length - 1}`]);
    expect(res.checksum?.verified).toBe(true);
    expect((await readFile(join(dir, 'f'))).equals(data)).toBe(true);
  });

  it('the rename never publishes a symlink swapped in for the part file', async () => {
    const dir = await tempDir();
    const victim = join(dir, 'victim');
    await writeFile(victim, 'secret');
    const part = await openPartFile(join(dir, 'f'));
    onTestFinished(() => closePart(part));
    // Another user swaps the part file for a link between the last write and the rename.
    await rm(part.path);
    await symlink(victim, part.path);
    await expect(publishPart(part, join(dir, 'f'), async (from, to) => (await import('node:fs/promises')).rename(from, to))).rejects.toMatchObject({
      code: 'TRANSFER_LOCAL_IO',
      message: expect.stringContaining('was replaced by someone else'),
    });
    await expect(lstat(join(dir, 'f'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(victim, 'utf8')).toBe('secret');
  });

  it('a rename raced after the check is undone: the destination is left without the link', async () => {
    const dir = await tempDir();
    const victim = join(dir, 'victim');
    await writeFile(victim, 'secret');
    const part = await openPartFile(join(dir, 'f'));
    onTestFinished(() => closePart(part));
    const { rename } = await import('node:fs/promises');
    // The swap happens inside the window between the check and the rename.
    const racedRename = async (from: string, to: string) => {
      await rm(from);
      await symlink(victim, from);
      await rename(from, to);
    };
    await expect(publishPart(part, join(dir, 'f'), racedRename)).rejects.toMatchObject({ code: 'TRANSFER_LOCAL_IO' });
    await expect(lstat(join(dir, 'f'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(victim, 'utf8')).toBe('secret');
  });

  it('`petrel get URL DEST/` with a symlink planted as DEST/v1.petrel-part: the victim is untouched (real XRootD, the CLI)', async () => {
    const { a } = tb.servers;
    const data = randomBytes(500_000);
    await writeDataFile(a, '/planted/v1', data);
    const home = await makeHome(tb);
    onTestFinished(() => home.cleanup());
    const dest = await tempDir();
    const victim = join(dest, 'victim');
    await writeFile(victim, 'the victim keeps this');
    await symlink(victim, join(dest, 'v1.petrel-part'));
    const tokenFile = join(home.dir, 'token');
    await writeFile(tokenFile, await mintToken(tb, { scope: 'storage.read:/' }), { mode: 0o600 });

    const run = await petrel(home, ['get', '-q', '--token', tokenFile, `${a.url}/planted/v1`, `${dest}/`]);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(await readFile(victim, 'utf8')).toBe('the victim keeps this');
    expect((await lstat(join(dest, 'v1'))).isSymbolicLink()).toBe(false);
    expect((await readFile(join(dest, 'v1'))).equals(data)).toBe(true);
  });
});
