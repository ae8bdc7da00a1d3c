// `npm run bench [-- --quick] [-- --only get,queue]`: Petrel against curl and gfal-copy on the
// test bed, side by side in one run; prints a table and writes bench/results/latest.json.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { mintToken, startTestbed, writeDataFile, type Testbed } from '../test/testbed/index.js';
import { compare, printTable, stats, timed, type CaseResult } from './harness.js';
import { measureQueue } from './queue.js';
import { socketPath } from '../src/paths.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const MiB = 1 << 20;

interface Plan {
  runs: number;
  bigBytes: number;
  smallFiles: number;
  /** The sequential references run over the first files of the list only (their rate does not depend on its length). */
  curlLoopFiles: number;
  gfalFiles: number;
  copies: number;
  gfalCopies: number;
  queued: number;
  statusCalls: number;
}

const FULL: Plan = { runs: 5, bigBytes: 1024 * MiB, smallFiles: 2000, curlLoopFiles: 300, gfalFiles: 60, copies: 500, gfalCopies: 20, queued: 100_000, statusCalls: 500 };
const QUICK: Plan = { runs: 1, bigBytes: 256 * MiB, smallFiles: 200, curlLoopFiles: 100, gfalFiles: 20, copies: 100, gfalCopies: 10, queued: 20_000, statusCalls: 100 };

/** A home of its own for an agent: config, state and socket under `dir`. */
async function agentHome(dir: string, config: object, caFile: string): Promise<NodeJS.ProcessEnv> {
  await mkdir(join(dir, 'config', 'petrel'), { recursive: true });
  await writeFile(join(dir, 'config', 'petrel', 'config.json'), JSON.stringify(config));
  return {
    ...process.env,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_STATE_HOME: join(dir, 'state'),
    XDG_RUNTIME_DIR: join(dir, 'run'),
    PETREL_CA_FILE: caFile,
  };
}

/** The reference tools come from Debian; install what is missing. */
function ensureTools(): void {
  const missing = [['curl', 'curl'], ['gfal-copy', 'gfal2-util-scripts gfal2-plugin-http']].filter(([bin]) => {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (!missing.length) return;
  const pkgs = missing.flatMap(([, p]) => (p as string).split(' '));
  console.log(`installing ${pkgs.join(' ')} ...`);
  execFileSync('apt-get', ['install', '-y', '-q', ...pkgs], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

async function main(): Promise<void> {
  const plan = process.argv.includes('--quick') ? QUICK : FULL;
  const onlyArg = process.argv.indexOf('--only');
  const only = onlyArg > 0 ? new Set((process.argv[onlyArg + 1] ?? '').split(',')) : undefined;
  const wanted = (name: string) => !only || only.has(name);
  ensureTools();
  const tb: Testbed = await startTestbed();
  const work = await mkdtemp('/tmp/petrel-bench-');
  const results: CaseResult[] = [];
  try {
    const env = await agentHome(join(work, 'home'), { concurrency: 8, perHostConcurrency: 8 }, tb.caFile);
    const petrel = (args: string[], e = env) => timed(process.execPath, [CLI, ...args], e);
    await petrel(['agent', 'start']);
    const token = await mintToken(tb, { scope: 'storage.read:/ storage.create:/ storage.modify:/', expiresIn: 6 * 3600 });
    const tokenFile = join(work, 'token');
    await writeFile(tokenFile, token, { mode: 0o600 });
    const { a, b } = tb.servers;
    const curl = ['-s', '-f', '--cacert', tb.caFile, '-H', `Authorization: Bearer ${token}`];
    const mb = plan.bigBytes / 1e6;
    const add = (name: string, unit: string, runs: { petrel: number[]; reference: number[] }, tool: string | undefined, betterIsLower: boolean, target?: { min: number; text: string }) => {
      const p = stats(runs.petrel);
      const r = runs.reference.length ? stats(runs.reference) : undefined;
      const ratio = r ? (betterIsLower ? r.median / p.median : p.median / r.median) : undefined;
      results.push({
        name,
        unit,
        petrel: p,
        ...(r && tool ? { reference: { tool, stats: r } } : {}),
        ...(ratio !== undefined ? { ratio } : {}),
        ...(target ? { target: target.text, met: (ratio ?? 0) >= target.min } : {}),
      });
      console.log(`${name}: petrel ${p.median.toFixed(3)}${r ? `, ${tool} ${r.median.toFixed(3)}, ratio ${ratio?.toFixed(2)}` : ''}`);
    };

    const gfalEnv = { ...process.env, BEARER_TOKEN: token, X509_CERT_DIR: tb.caDir };
    const gfal = (args: string[]) => timed('gfal-copy', ['-f', '-K', 'adler32', ...args], gfalEnv);
    const throughput = (secs: number[]) => secs.map((s) => mb / s);
    const rate = (files: number) => (secs: number[]) => secs.map((s) => files / s);
    let round = 0;

    if (wanted('get')) {
      await writeDataFile(a, '/bench/big.bin', plan.bigBytes);
      const get = await compare(
        plan.runs,
        () => petrel(['get', '--async', '--wait', '-q', '--token', tokenFile, `${a.url}/bench/big.bin`, join(work, 'get.bin')]).finally(() => rm(join(work, 'get.bin'), { force: true })),
        () => timed('curl', [...curl, '-o', join(work, 'curl.bin'), `${a.url}/bench/big.bin`]).finally(() => rm(join(work, 'curl.bin'), { force: true })),
      );
      add(`get ${mb.toFixed(0)} MB (adler32)`, 'MB/s', { petrel: throughput(get.petrel), reference: throughput(get.reference) }, 'curl', false, { min: 0.95, text: '≥ 0.95×' });
    }

    if (wanted('put')) {
      const local = join(work, 'up.bin');
      execFileSync('head', ['-c', String(plan.bigBytes), '/dev/urandom'], { stdio: ['ignore', openSync(local, 'w'), 'inherit'] });
      const put = await compare(
        plan.runs,
        () => petrel(['put', '--async', '--wait', '-q', '--token', tokenFile, local, `${b.url}/bench/put-petrel.bin`]),
        () => timed('curl', [...curl, '-T', local, `${b.url}/bench/put-curl.bin`]),
      );
      add(`put ${mb.toFixed(0)} MB (adler32)`, 'MB/s', { petrel: throughput(put.petrel), reference: throughput(put.reference) }, 'curl -T', false, { min: 0.95, text: '≥ 0.95×' });
      await rm(local, { force: true });
    }

    if (wanted('copy')) {
      await writeDataFile(a, '/bench/big.bin', plan.bigBytes);
      const curlCopy = () => timed('curl', [...curl, '-X', 'COPY', '-H', `Source: ${a.url}/bench/big.bin`, '-H', `TransferHeaderAuthorization: Bearer ${token}`, '-H', 'Credential: none', '-H', 'Overwrite: T', `${b.url}/bench/copy-curl.bin`]);
      const copy = (checksum: string) => () => petrel(['copy', '--async', '--wait', '-q', '--overwrite', '--checksum', checksum, '--token', tokenFile, `${a.url}/bench/big.bin`, `${b.url}/bench/copy-petrel.bin`]);
      const plain = await compare(plan.runs, copy('none'), curlCopy);
      add(`copy ${mb.toFixed(0)} MB (pull)`, 'MB/s', { petrel: throughput(plain.petrel), reference: throughput(plain.reference) }, 'curl COPY', false, { min: 0.98, text: '≥ 0.98×' });
      const verified = await compare(plan.runs, copy('adler32'), curlCopy);
      add(`copy ${mb.toFixed(0)} MB (pull, adler32 of both ends compared)`, 'MB/s', { petrel: throughput(verified.petrel), reference: throughput(verified.reference) }, 'curl COPY', false);
    }

    if (wanted('small')) {
      const n = plan.smallFiles;
      await Promise.all(Array.from({ length: n }, (_, i) => writeDataFile(a, `/bench/small/f${i}`, 64 * 1024)));
      const urls = Array.from({ length: n }, (_, i) => `${a.url}/bench/small/f${i}`);
      const list = join(work, 'small.txt');
      await writeFile(list, urls.join('\n'));
      // The sequential references run over a part of the list: their rate does not depend on its length.
      const curlList = join(work, 'small-curl.txt');
      await writeFile(curlList, urls.slice(0, plan.curlLoopFiles).join('\n'));
      const gfalList = join(work, 'small-gfal.txt');
      await writeFile(gfalList, urls.slice(0, plan.gfalFiles).join('\n'));
      const curlLoop = join(work, 'loop.sh');
      await writeFile(curlLoop, `set -e\nmkdir -p "$1"\nwhile read -r u; do curl -s -f --cacert ${tb.caFile} -H "Authorization: Bearer $(cat ${tokenFile})" -o "$1/$(basename "$u")" "$u"; done < "$2"\n`);
      const dir = () => join(work, `small-${round++}`);
      const viaCurl = await compare(
        plan.runs,
        () => petrel(['get', '--async', '--wait', '-q', '--token', tokenFile, '--from-file', list, `${dir()}/`]),
        () => timed('bash', [curlLoop, dir(), curlList]),
      );
      add(`${n} × 64 KiB in one job (adler32)`, 'files/s', { petrel: rate(n)(viaCurl.petrel), reference: rate(plan.curlLoopFiles)(viaCurl.reference) }, 'curl loop (no checksum)', false, { min: 10, text: '≥ 10×' });
      const viaGfal = await compare(
        plan.runs,
        () => petrel(['get', '--async', '--wait', '-q', '--token', tokenFile, '--from-file', list, `${dir()}/`]),
        async () => {
          const d = dir();
          await mkdir(d);
          return gfal(['--from-file', gfalList, `file://${d}/`]);
        },
      );
      add(`${n} × 64 KiB in one job (adler32)`, 'files/s', { petrel: rate(n)(viaGfal.petrel), reference: rate(plan.gfalFiles)(viaGfal.reference) }, 'gfal-copy --from-file (adler32)', false, { min: 3, text: '≥ 3×' });
    }

    if (wanted('copies')) {
      const n = plan.copies;
      const data = randomBytes(MiB);
      await Promise.all(Array.from({ length: n }, (_, i) => writeDataFile(a, `/bench/mib/f${i}`, data)));
      const list = join(work, 'copies.txt');
      let r = 0;
      const copies = await compare(
        plan.runs,
        async () => {
          const dest = `${b.url}/bench/copies-${r++}/`;
          await writeFile(list, Array.from({ length: n }, (_, i) => `${a.url}/bench/mib/f${i}`).join('\n'));
          return petrel(['copy', '--async', '--wait', '-q', '--token', tokenFile, '--from-file', list, dest]);
        },
        async () => {
          const start = process.hrtime.bigint();
          for (let i = 0; i < plan.gfalCopies; i++) await gfal([`${a.url}/bench/mib/f${i}`, `${b.url}/bench/gfal-${r}/f${i}`]);
          return Number(process.hrtime.bigint() - start) / 1e9;
        },
      );
      add(`${n} × 1 MiB third-party copies in one job (adler32)`, 'copies/s', { petrel: rate(n)(copies.petrel), reference: rate(plan.gfalCopies)(copies.reference) }, 'gfal-copy loop (adler32)', false, { min: 3, text: '≥ 3×' });
    }

    if (wanted('version')) {
      const version = await compare(Math.max(5, plan.runs * 3), () => petrel(['--version']), () => timed(process.execPath, ['-e', '0']));
      add('petrel --version', 's', version, 'node -e 0', true, { min: 1 / 1.6, text: '≤ 1.6× node' });
    }
    await petrel(['agent', 'stop']);

    if (wanted('queue')) {
      // An agent of its own, so its peak memory is the queue's; 4 may run against one host.
      const qenv = await agentHome(join(work, 'queue-home'), { concurrency: 8, perHostConcurrency: 4 }, tb.caFile);
      await petrel(['agent', 'start'], qenv);
      try {
        const q = await measureQueue(tb, { socket: socketPath(qenv), workDir: work, n: plan.queued, running: 4, statusCalls: plan.statusCalls });
        console.log(`queue: submit ${q.submitSeconds.toFixed(2)} s, status p50 ${q.statusMs.median.toFixed(1)} ms p99 ${q.statusMs.p99.toFixed(1)} ms, RSS idle ${q.idleRssMB.toFixed(0)} MB, peak ${q.peakRssMB.toFixed(0)} MB, queued ${q.queuedRssMB.toFixed(0)} MB`);
        const one = (x: number) => ({ median: x, min: x, max: x, runs: [x] });
        const n = plan.queued.toLocaleString('en');
        results.push({ name: `submit one job of ${n} transfers`, unit: 's', petrel: one(q.submitSeconds), target: '< 1 s', met: q.submitSeconds < 1 });
        results.push({ name: `job status with ${n} queued, ${q.running} running (p99 ${q.statusMs.p99.toFixed(1)} ms)`, unit: 'ms', petrel: q.statusMs, target: 'p99 < 20 ms', met: q.statusMs.p99 < 20 });
        results.push({ name: `agent peak RSS with ${n} queued (idle ${q.idleRssMB.toFixed(0)} MB, settled ${q.queuedRssMB.toFixed(0)} MB)`, unit: 'MB', petrel: one(q.peakRssMB), target: '< 120 MB', met: q.peakRssMB < 120 });
      } finally {
        await petrel(['agent', 'stop'], qenv);
      }
    }
  } finally {
    await tb.stop();
    await rm(work, { recursive: true, force: true });
  }
  printTable(results);
  const out = join(ROOT, 'bench', 'results');
  await mkdir(out, { recursive: true });
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  await writeFile(join(out, 'latest.json'), `${JSON.stringify({ date: new Date().toISOString(), quick: plan === QUICK, machine, results }, null, 2)}\n`);
  console.log(`\nresults: ${join(out, 'latest.json')}`);
}

await main();
