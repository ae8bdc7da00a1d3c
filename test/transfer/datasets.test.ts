// ls, stat and rm against the test bed's XRootD (PROPFIND, DELETE served for real), and a stand-in
// whose listings are hostile.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { makeHome, petrel, type Home } from '../helpers/agent.js';
import { standIn } from '../helpers/stand-in.js';
import { mintToken, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');
const a = tb.servers.a;

let home: Home;
let tokenFile: string;
beforeAll(async () => {
  home = await makeHome(tb);
  tokenFile = join(home.dir, 'token');
  await writeFile(tokenFile, await mintToken(tb, { scope: 'storage.read:/ds storage.create:/ds storage.modify:/ds', expiresIn: 3600 }), { mode: 0o600 });
  await writeDataFile(a, '/ds/tree/a.bin', 1000);
  await writeDataFile(a, '/ds/tree/b.txt', Buffer.from('hello'));
  await writeDataFile(a, '/ds/tree/sub/c.bin', 2048);
  await writeDataFile(a, '/ds/tree/sub/deeper/d.bin', 10);
});
afterAll(() => home.cleanup());

describe('petrel ls and stat', () => {
  it('lists a directory: names, sizes, types, times; --json gives the entries', async () => {
    const plain = await petrel(home, ['ls', `${a.url}/ds/tree/`, '--token', tokenFile]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toBe('a.bin\nb.txt\nsub/\n');
    const json = await petrel(home, ['ls', '--json', `${a.url}/ds/tree`, '--token', tokenFile]);
    expect(json.code, json.stderr).toBe(0);
    const entries = JSON.parse(json.stdout) as { name: string; type: string; size: number | null; mtime: string | null; url: string }[];
    expect(entries.map((e) => [e.name, e.type, e.size])).toEqual([
      ['a.bin', 'file', 1000],
      ['b.txt', 'file', 5],
      ['sub', 'dir', null],
    ]);
    expect(entries[0]?.url).toBe(`${a.url}/ds/tree/a.bin`);
    expect(Date.parse(entries[0]?.mtime ?? '')).toBeGreaterThan(Date.now() - 3_600_000);
    const long = await petrel(home, ['ls', '-l', `${a.url}/ds/tree/sub/`, '--token', tokenFile]);
    expect(long.stdout).toMatch(/^- +2\.0 KiB .* c\.bin\nd +- .* deeper\/\n$/);
  });

  it('stat says type, size, time, and the checksum when asked', async () => {
    const res = await petrel(home, ['stat', '--json', '--checksum', 'adler32', `${a.url}/ds/tree/b.txt`, `${a.url}/ds/tree/sub`, '--token', tokenFile]);
    expect(res.code, res.stderr).toBe(0);
    const [file, dir] = JSON.parse(res.stdout) as { type: string; size: number | null; checksum?: string }[];
    // adler32("hello") = 062c0215
    expect(file).toMatchObject({ type: 'file', size: 5, checksum: 'adler32:062c0215' });
    expect(dir).toMatchObject({ type: 'dir' });
    const missing = await petrel(home, ['stat', `${a.url}/ds/tree/none`, '--token', tokenFile]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404');
  });
});

describe('petrel rm', () => {
  it('removes a file; refuses a directory without -r; -r removes the tree; the root needs --force', async () => {
    await writeDataFile(a, '/ds/gone/x.bin', 10);
    await writeDataFile(a, '/ds/gone/y/z.bin', 10);
    const file = await petrel(home, ['rm', `${a.url}/ds/gone/x.bin`, '--token', tokenFile]);
    expect(file.code, file.stderr).toBe(0);
    expect(existsSync(join(a.dataDir, 'ds/gone/x.bin'))).toBe(false);
    const dir = await petrel(home, ['rm', `${a.url}/ds/gone`, '--token', tokenFile]);
    expect(dir.code).toBe(2);
    expect(dir.stderr).toContain('pass -r');
    const tree = await petrel(home, ['rm', '-r', '--json', `${a.url}/ds/gone`, '--token', tokenFile]);
    expect(tree.code, tree.stderr).toBe(0);
    expect((JSON.parse(tree.stdout) as { removed: string[] }).removed).toHaveLength(3);
    expect(existsSync(join(a.dataDir, 'ds/gone'))).toBe(false);
    const root = await petrel(home, ['rm', '-r', `${a.url}/ds`, '--token', tokenFile]);
    expect(root.code).toBe(2);
    expect(root.stderr).toContain('--force');
    expect(existsSync(join(a.dataDir, 'ds/tree/a.bin'))).toBe(true);
  });

  it('refuses a token that may create but not modify, naming storage.modify', async () => {
    await writeDataFile(a, '/ds/kept.bin', 10);
    const createOnly = join(home.dir, 'create-only');
    await writeFile(createOnly, await mintToken(tb, { scope: 'storage.read:/ds storage.create:/ds', expiresIn: 600 }), { mode: 0o600 });
    const res = await petrel(home, ['rm', `${a.url}/ds/kept.bin`, '--token', createOnly]);
    // As for a transfer: a token refused before anything is asked of the storage is a usage error.
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('do not allow removing /ds/kept.bin');
    expect(res.stderr).toContain('storage.modify:/ds/kept.bin');
    expect(existsSync(join(a.dataDir, 'ds/kept.bin'))).toBe(true);
  });
});

describe('hostile listings', () => {
  const multistatus = (hrefs: string[]) =>
    `<?xml version="1.0"?><D:multistatus xmlns:D="DAV:">${hrefs
      .map((h) => `<D:response><D:href>${h}</D:href><D:propstat><D:prop><D:resourcetype/><D:getcontentlength>1</D:getcontentlength></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`)
      .join('')}</D:multistatus>`;

  it.each([
    ['a parent directory', '/d/../../etc/passwd'],
    ['another host', 'https://elsewhere.example.org/d/f'],
    ['an encoded slash', '/d/a%2Fb'],
    ['a control character', '/d/a%0Ab'],
  ])('an entry naming %s is refused with a clear error', async (_, href) => {
    const server = await standIn(tb, (req, res) => {
      res.writeHead(207, { 'Content-Type': 'application/xml' });
      res.end(req.headers.depth === '0' ? multistatus(['/d/']).replace('<D:resourcetype/>', '<D:resourcetype><D:collection/></D:resourcetype>') : multistatus(['/d/', href]));
    });
    const res = await petrel(home, ['ls', `${server.url}/d/`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/outside it|another storage|cannot be a file name/);
    // A tree download fails at the same entry, writing nothing.
    const dest = join(home.dir, `hostile-${Math.random().toString(36).slice(2)}`);
    const get = await petrel(home, ['get', '-r', `${server.url}/d/`, dest]);
    expect(get.code).toBe(1);
    expect(get.stdout).toMatch(/outside it|another storage|cannot be a file name/);
    expect(existsSync(dest)).toBe(false);
  });
});
