import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { thrown } from '../helpers/errors.js';
import { parsePairList, planTransfers } from '../../cli/lib/plan.js';

/** A fresh temp directory, removed when the test ends. */
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'petrel-plan-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const SRC = 'https://xrd.example.org:1094/store/run1/a.root';

describe('planTransfers get', () => {
  it('downloads one source to the file path given', async () => {
    const cwd = await tempDir();
    expect(planTransfers('get', [{ source: SRC }], 'copy.root', cwd)).toEqual([{ source: SRC, destination: join(cwd, 'copy.root') }]);
  });

  it('puts the file inside a destination ending in /, even one that does not exist yet', async () => {
    const cwd = await tempDir();
    expect(planTransfers('get', [{ source: SRC }], 'new/', cwd)).toEqual([{ source: SRC, destination: join(cwd, 'new', 'a.root') }]);
  });

  it('puts the file inside an existing local directory named without a trailing /', async () => {
    const cwd = await tempDir();
    await mkdir(join(cwd, 'in'));
    expect(planTransfers('get', [{ source: SRC }], 'in', cwd)[0]?.destination).toBe(join(cwd, 'in', 'a.root'));
  });

  it('treats an existing absolute directory as a directory whatever the cwd', async () => {
    const dir = await tempDir();
    expect(planTransfers('get', [{ source: SRC }], dir, '/')[0]?.destination).toBe(join(dir, 'a.root'));
  });

  it('puts several sources inside the shared destination, each by its own name', async () => {
    const cwd = await tempDir();
    const plan = planTransfers('get', [{ source: SRC }, { source: 'davs://xrd.example.org/store/b.root' }], 'out', cwd);
    expect(plan).toEqual([
      { source: SRC, destination: join(cwd, 'out', 'a.root') },
      { source: 'https://xrd.example.org/store/b.root', destination: join(cwd, 'out', 'b.root') },
    ]);
  });

  it('takes a pair’s own destination as a file, while the sources without one share the directory', async () => {
    const cwd = await tempDir();
    const plan = planTransfers(
      'get',
      [{ source: SRC, destination: 'mine.root' }, { source: 'https://h.example.org/b.root' }, { source: 'https://h.example.org/c.root' }],
      'out',
      cwd,
    );
    expect(plan.map((p) => p.destination)).toEqual([join(cwd, 'mine.root'), join(cwd, 'out', 'b.root'), join(cwd, 'out', 'c.root')]);
  });

  it('writes the source as its https twin', async () => {
    const cwd = await tempDir();
    expect(planTransfers('get', [{ source: 'davs://h.example.org/x.root' }], 'x', cwd)[0]?.source).toBe('https://h.example.org/x.root');
  });

  it('refuses a local source with USAGE, hinting at put', async () => {
    const cwd = await tempDir();
    const e = thrown(() => planTransfers('get', [{ source: '/etc/hostname' }], 'out', cwd));
    expect(e.code).toBe('USAGE');
    expect(e.hint).toContain('put');
  });

  it('refuses a URL destination with USAGE', async () => {
    const cwd = await tempDir();
    expect(thrown(() => planTransfers('get', [{ source: SRC }], 'https://other.example.org/x', cwd)).code).toBe('USAGE');
  });

  it('refuses a source without any destination with USAGE', async () => {
    const cwd = await tempDir();
    expect(thrown(() => planTransfers('get', [{ source: SRC }], undefined, cwd)).code).toBe('USAGE');
  });
});

describe('planTransfers put', () => {
  it('uploads one file to the URL given', async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, 'a.root'), 'x');
    expect(planTransfers('put', [{ source: 'a.root' }], 'https://h.example.org/store/b.root', cwd)).toEqual([
      { source: join(cwd, 'a.root'), destination: 'https://h.example.org/store/b.root' },
    ]);
  });

  it('puts the file inside a URL ending in /', async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, 'a.root'), 'x');
    expect(planTransfers('put', [{ source: 'a.root' }], 'davs://h.example.org/store/', cwd)[0]?.destination).toBe('https://h.example.org/store/a.root');
  });

  it('puts several files inside the shared URL', async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, 'a.root'), 'x');
    await writeFile(join(cwd, 'b c.root'), 'x');
    const plan = planTransfers('put', [{ source: 'a.root' }, { source: 'b c.root' }], 'https://h.example.org/store', cwd);
    expect(plan.map((p) => p.destination)).toEqual(['https://h.example.org/store/a.root', 'https://h.example.org/store/b%20c.root']);
  });

  it('refuses a URL source with USAGE, hinting at get', async () => {
    const cwd = await tempDir();
    const e = thrown(() => planTransfers('put', [{ source: SRC }], 'https://h.example.org/x', cwd));
    expect(e.code).toBe('USAGE');
    expect(e.hint).toContain('get');
  });

  it('refuses a local destination with USAGE', async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, 'a.root'), 'x');
    expect(thrown(() => planTransfers('put', [{ source: 'a.root' }], 'elsewhere', cwd)).code).toBe('USAGE');
  });

  it('refuses a missing source file with USAGE naming it', async () => {
    const cwd = await tempDir();
    const e = thrown(() => planTransfers('put', [{ source: 'missing.root' }], 'https://h.example.org/x', cwd));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain(join(cwd, 'missing.root'));
  });

  it('refuses a directory as source with USAGE', async () => {
    const cwd = await tempDir();
    await mkdir(join(cwd, 'sub'));
    expect(thrown(() => planTransfers('put', [{ source: 'sub' }], 'https://h.example.org/x/', cwd)).code).toBe('USAGE');
  });
});

describe('parsePairList', () => {
  it('reads one source per line, with or without a destination', () => {
    expect(parsePairList('https://h/a.root\nhttps://h/b.root  /data/b.root\n', 'list.txt')).toEqual([
      { source: 'https://h/a.root', destination: undefined },
      { source: 'https://h/b.root', destination: '/data/b.root' },
    ]);
  });

  it('skips blank lines, indented comments and surrounding white space, CRLF included', () => {
    const text = '# header\r\n\r\n   \r\n  https://h/a.root\t/x  \r\n\t# https://h/skipped\r\n';
    expect(parsePairList(text, 'list.txt')).toEqual([{ source: 'https://h/a.root', destination: '/x' }]);
  });

  it('refuses a line with three fields with USAGE naming file:line', () => {
    const e = thrown(() => parsePairList('# c\nhttps://h/a /x\nhttps://h/b c /y\n', 'pairs.txt'));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain('pairs.txt:3');
  });

  it('refuses a list with no transfers with USAGE naming the file', () => {
    const e = thrown(() => parsePairList('# only a comment\n\n', 'empty.txt'));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain('empty.txt');
  });

  it('refuses an empty text with USAGE', () => {
    expect(thrown(() => parsePairList('', 'none.txt')).code).toBe('USAGE');
  });
});
