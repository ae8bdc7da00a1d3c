// The listing case of `npm run bench`: one listing of a directory of 20,000 files on XRootD
// server a, `petrel ls --json` (WebDAV PROPFIND, Depth 1) against `gfal-ls -l` and `rclone lsf`
// (WebDAV remote from the environment). Each command runs under GNU time for its peak RSS, its
// output goes to a file, and every run's output is checked: all the directory's names, once each.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDataFile, type Testbed, type XrootdServer } from '../test/testbed/index.js';

/** GNU time: its `%M` is the peak RSS (KiB) of the command, from wait4's rusage. */
export const GNU_TIME = '/usr/bin/time';

/** The tools the case needs beside curl and gfal (gfal-ls comes with gfal-copy): [command, Debian packages]. */
export const LISTING_TOOLS = { required: [[GNU_TIME, 'time']], optional: [['rclone', 'rclone']] };

/** What a lister's output holds: the names it lists. */
type Names = (stdout: string) => string[];

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

/** `petrel ls --json`: an array of entries. */
const petrelNames: Names = (s) => (JSON.parse(s) as { name: string }[]).map((e) => e.name);
/** `gfal-ls -l`: `-rwxrwxrwx 0 0 0 1024 Dec 4 02:53 NAME` (with a trailing tab). */
const gfalNames: Names = (s) => lines(s).map((l) => l.trim().split(/\s+/).at(-1) ?? '');
/** `rclone lsf`: one name a line (directories end in /). */
const rcloneNames: Names = (s) => lines(s).map((l) => l.trim());

export interface Lister {
  tool: string;
  /** The program it runs (under GNU time). */
  command: string;
  /** One listing, timed (wall seconds); rejects when the command fails or its output does not hold the n names. */
  run: () => Promise<number>;
  /** Peak RSS (MB) of each run so far. */
  rssMB: number[];
  /** Names listed by each run so far. */
  entries: number[];
}

/** Creates `${dir}/f0` … `f${n-1}` of `bytes` bytes each in the server's data dir, owned as the server needs. */
export async function makeListingDir(s: XrootdServer, dir: string, n: number, bytes: number): Promise<void> {
  const data = Buffer.alloc(bytes, 'x');
  // The first one makes (and hands over) the directories; then 256 files at a time.
  await writeDataFile(s, `${dir}/f0`, data);
  for (let i = 1; i < n; i += 256) {
    await Promise.all(Array.from({ length: Math.min(256, n - i) }, (_, j) => writeDataFile(s, `${dir}/f${i + j}`, data)));
  }
}

/** Checks that `names` are f0 … f(n-1), each once; returns why not, or undefined. */
function wrongNames(names: string[], n: number): string | undefined {
  const seen = new Set<number>();
  for (const name of names) {
    const i = /^f(\d+)$/.test(name) ? Number(name.slice(1)) : NaN;
    if (!(i >= 0 && i < n)) return `unexpected entry ${JSON.stringify(name)}`;
    if (seen.has(i)) return `${name} listed twice`;
    seen.add(i);
  }
  return seen.size === n ? undefined : `${seen.size} of ${n} files listed`;
}

function lister(tool: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, names: Names, n: number, workDir: string): Lister {
  const slug = tool.split(' ')[0] as string;
  const out = join(workDir, `listing-${slug}.out`);
  const rssFile = join(workDir, `listing-${slug}.rss`);
  const self: Lister = {
    tool,
    command: cmd,
    rssMB: [],
    entries: [],
    async run() {
      const fd = openSync(out, 'w');
      const secs = await new Promise<number>((resolve, reject) => {
        const start = process.hrtime.bigint();
        const child = spawn(GNU_TIME, ['-f', '%M', '-o', rssFile, cmd, ...args], { env, stdio: ['ignore', fd, 'pipe'] });
        let err = '';
        child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
        child.on('error', reject);
        child.on('close', (code) => {
          const s = Number(process.hrtime.bigint() - start) / 1e9;
          if (code === 0) resolve(s);
          else reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')} … exited ${code}: ${err.trim().slice(-500)}`));
        });
      }).finally(() => closeSync(fd));
      const stdout = await readFile(out, 'utf8');
      let listed: string[];
      try {
        listed = names(stdout);
      } catch (e) {
        throw new Error(`${tool}: unreadable output (${(e as Error).message}): ${stdout.slice(0, 300)}`);
      }
      const wrong = wrongNames(listed, n);
      if (wrong) throw new Error(`${tool}: ${wrong} (${listed.length} entries): ${stdout.slice(0, 300)}`);
      self.entries.push(listed.length);
      self.rssMB.push(Number((await readFile(rssFile, 'utf8')).trim().split('\n').at(-1)) / 1024);
      await rm(out, { force: true });
      return secs;
    },
  };
  return self;
}

/**
 * The three listers of `${s.url}${dir}/` (a directory of `n` files): Petrel's CLI `cli` run by
 * node with `petrelEnv` (PETREL_CA_FILE), gfal-ls with the token as BEARER_TOKEN, rclone with a
 * WebDAV remote from RCLONE_CONFIG_* variables; `tokenFile` holds `token`.
 */
export function listers(tb: Testbed, s: XrootdServer, opts: { dir: string; n: number; cli: string; petrelEnv: NodeJS.ProcessEnv; token: string; tokenFile: string; workDir: string }) {
  const url = `${s.url}${opts.dir}/`;
  const petrel = lister('petrel ls --json', process.execPath, [opts.cli, 'ls', '--json', url, '--token', opts.tokenFile], opts.petrelEnv, petrelNames, opts.n, opts.workDir);
  const gfalEnv = { ...process.env, BEARER_TOKEN: opts.token, X509_CERT_DIR: tb.caDir };
  const gfal = lister('gfal-ls -l', 'gfal-ls', ['-l', url], gfalEnv, gfalNames, opts.n, opts.workDir);
  const rcloneEnv = {
    ...process.env,
    RCLONE_CONFIG_BENCH_TYPE: 'webdav',
    RCLONE_CONFIG_BENCH_URL: url,
    RCLONE_CONFIG_BENCH_VENDOR: 'other',
    RCLONE_CONFIG_BENCH_BEARER_TOKEN: opts.token,
  };
  // No config file (`--config ''`: in memory only; the remote is all in the environment), the test CA trusted.
  const rclone = lister('rclone lsf', 'rclone', ['lsf', '--config', '', '--ca-cert', tb.caFile, 'bench:'], rcloneEnv, rcloneNames, opts.n, opts.workDir);
  return { petrel, gfal, rclone };
}
