// `npm run bench [-- --quick]`: Petrel against curl (and gfal-copy) on the test bed, side by side
// in one run; prints a table and writes bench/results/latest.json. The queue cases of issue 6
// (100,000 transfers) come in a later step.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { mintToken, startTestbed, writeDataFile, type Testbed } from '../test/testbed/index.js';
import { compare, printTable, stats, timed, type CaseResult } from './harness.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const MiB = 1 << 20;

interface Plan {
  runs: number;
  bigBytes: number;
  smallFiles: number;
}

const FULL: Plan = { runs: 3, bigBytes: 1024 * MiB, smallFiles: 2000 };
const QUICK: Plan = { runs: 1, bigBytes: 256 * MiB, smallFiles: 200 };

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
  ensureTools();
  const tb: Testbed = await startTestbed();
  const work = await mkdtemp('/tmp/petrel-bench-');
  const results: CaseResult[] = [];
  try {
    const home = join(work, 'home');
    await mkdir(join(home, 'config', 'petrel'), { recursive: true });
    await writeFile(join(home, 'config', 'petrel', 'config.json'), JSON.stringify({ concurrency: 8, perHostConcurrency: 8 }));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: join(home, 'config'),
      XDG_STATE_HOME: join(home, 'state'),
      XDG_RUNTIME_DIR: join(home, 'run'),
      PETREL_CA_FILE: tb.caFile,
    };
    const petrel = (args: string[]) => timed(process.execPath, [CLI, ...args], env);
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
    const throughput = (secs: number[]) => secs.map((s) => mb / s);

    // 1. one big download, adler32 verified, through the agent
    await writeDataFile(a, '/bench/big.bin', plan.bigBytes);
    const get = await compare(
      plan.runs,
      () => petrel(['get', '--async', '--wait', '-q', '--token', tokenFile, `${a.url}/bench/big.bin`, join(work, 'get.bin')]).finally(() => rm(join(work, 'get.bin'), { force: true })),
      () => timed('curl', [...curl, '-o', join(work, 'curl.bin'), `${a.url}/bench/big.bin`]).finally(() => rm(join(work, 'curl.bin'), { force: true })),
    );
    add(`get ${mb.toFixed(0)} MB (adler32)`, 'MB/s', { petrel: throughput(get.petrel), reference: throughput(get.reference) }, 'curl', false, { min: 0.95, text: '≥ 0.95×' });

    // 2. one big upload
    const local = join(work, 'up.bin');
    execFileSync('head', ['-c', String(plan.bigBytes), '/dev/urandom'], { stdio: ['ignore', (await import('node:fs')).openSync(local, 'w'), 'inherit'] });
    const put = await compare(
      plan.runs,
      () => petrel(['put', '--async', '--wait', '-q', '--token', tokenFile, local, `${b.url}/bench/put-petrel.bin`]),
      () => timed('curl', [...curl, '-T', local, `${b.url}/bench/put-curl.bin`]),
    );
    add(`put ${mb.toFixed(0)} MB`, 'MB/s', { petrel: throughput(put.petrel), reference: throughput(put.reference) }, 'curl -T', false, { min: 0.95, text: '≥ 0.95×' });

    // 3. one big third-party copy (pull), against the same COPY sent by curl
    const copy = await compare(
      plan.runs,
      () => petrel(['copy', '--async', '--wait', '-q', '--overwrite', '--token', tokenFile, `${a.url}/bench/big.bin`, `${b.url}/bench/copy-petrel.bin`]),
      () => timed('curl', [...curl, '-X', 'COPY', '-H', `Source: ${a.url}/bench/big.bin`, '-H', `TransferHeaderAuthorization: Bearer ${token}`, '-H', 'Credential: none', '-H', 'Overwrite: T', `${b.url}/bench/copy-curl.bin`]),
    );
    add(`copy ${mb.toFixed(0)} MB (pull, checksums compared)`, 'MB/s', { petrel: throughput(copy.petrel), reference: throughput(copy.reference) }, 'curl COPY', false, { min: 0.98, text: '≥ 0.98×' });

    // 4. many small files in one job, against a sequential curl loop
    const n = plan.smallFiles;
    await Promise.all(Array.from({ length: n }, (_, i) => writeDataFile(a, `/bench/small/f${i}`, 64 * 1024)));
    const list = join(work, 'small.txt');
    await writeFile(list, Array.from({ length: n }, (_, i) => `${a.url}/bench/small/f${i}`).join('\n'));
    const curlLoop = join(work, 'loop.sh');
    await writeFile(curlLoop, `set -e\nmkdir -p "$1"\nwhile read -r u; do curl -s -f --cacert ${tb.caFile} -H "Authorization: Bearer $(cat ${tokenFile})" -o "$1/$(basename "$u")" "$u"; done < ${list}\n`);
    let round = 0;
    const small = await compare(
      plan.runs,
      () => petrel(['get', '--async', '--wait', '-q', '--token', tokenFile, '--from-file', list, join(work, `small-p${round++}`) + '/']),
      () => timed('bash', [curlLoop, join(work, `small-c${round}`)]),
    );
    const perSec = (secs: number[]) => secs.map((s) => n / s);
    add(`${n} × 64 KiB in one job`, 'files/s', { petrel: perSec(small.petrel), reference: perSec(small.reference) }, 'curl loop', false, { min: 10, text: '≥ 10×' });

    // 5. CLI start-up
    const version = await compare(Math.max(5, plan.runs * 3), () => petrel(['--version']), () => timed(process.execPath, ['-e', '0']));
    add('petrel --version', 's', version, 'node -e 0', true, { min: 1 / 1.6, text: '≤ 1.6× node' });

    await petrel(['agent', 'stop']);
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
