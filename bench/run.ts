// `npm run bench [-- --quick] [-- --only get,peers,streams,latency,queue,tape,listing,tree]`: Petrel against curl, gfal-copy,
// gfal-ls, davix-get, xrdcp and rclone on the test bed, side by side in one run; prints a table and writes bench/results/latest.json.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { createAgentClient } from '../src/api/index.js';
import { socketPath } from '../src/paths.js';
import { mintToken, startTestbed, writeDataFile, type Testbed, type XrootdServer } from '../test/testbed/index.js';
import { cpuProbe, type CpuSplit } from './cpu.js';
import { startLatencyProxy } from './latency-proxy.js';
import { resetPeakRss, rssMB } from './memory.js';
import { compare, compareAll, medianCpu, printTable, stats, timed, type CaseResult, type CompareContext, type Runs } from './harness.js';
import { listers, LISTING_TOOLS, makeListingDir, type Lister } from './listing.js';
import { PEER_TOOLS, peerGets, peerManyGets, peerPuts } from './peers.js';
import { measureQueue } from './queue.js';
import { measureTape, TAPE_CONFIG } from './tape.js';
import { measureTreeListing, rcloneTreeListing, startTreeServer } from './tree.js';
import { createWatchdog } from './watchdog.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const FLOOR = join(ROOT, 'dist', 'bench', 'https-floor.js');
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
  /** Files in the directory the listing case lists. */
  listed: number;
  queued: number;
  statusCalls: number;
  /** Files of the one prestage job the tape case submits. */
  tapeFiles: number;
}

const FULL: Plan = { runs: 5, bigBytes: 1024 * MiB, smallFiles: 2000, curlLoopFiles: 300, gfalFiles: 60, copies: 500, gfalCopies: 20, listed: 20_000, queued: 100_000, statusCalls: 500, tapeFiles: 10_000 };
const QUICK: Plan = { runs: 1, bigBytes: 256 * MiB, smallFiles: 200, curlLoopFiles: 100, gfalFiles: 20, copies: 100, gfalCopies: 10, listed: 20_000, queued: 20_000, statusCalls: 100, tapeFiles: 10_000 };

/**
 * The agent's settings for the bench: 8 transfers at once (also per host), and a 20-s idle
 * timeout, so a digest request XRootD 5.5 leaves unanswered is retried in 20 s, not 120.
 */
const AGENT_CONFIG = { concurrency: 8, perHostConcurrency: 8, idleTimeoutMs: 20_000 };

/** The latency case: round trip, bytes in flight per connection, rounds. */
const LATENCY_RTT_MS = 50;
const LATENCY_WINDOW = 6 * MiB;
const LATENCY_ROUNDS = 3;

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

const commandExists = (bin: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

const aptInstall = (pkgs: string[]) => {
  console.log(`installing ${pkgs.join(' ')} ...`);
  execFileSync('apt-get', ['install', '-y', '-q', ...pkgs], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
};

/**
 * The reference tools come from Debian; install what is missing. A case's `optional` tools may
 * fail to install: the rows that need them then read n/a.
 */
function ensureTools(extra: { required: string[][]; optional: string[][] } = { required: [], optional: [] }): void {
  const missing = [['curl', 'curl'], ['gfal-copy', 'gfal2-util-scripts gfal2-plugin-http python-is-python3'], ...extra.required].filter(([bin]) => !commandExists(bin as string));
  if (missing.length) aptInstall(missing.flatMap(([, p]) => (p as string).split(' ')));
  const optional = extra.optional.filter(([bin]) => !commandExists(bin as string));
  if (!optional.length) return;
  try {
    aptInstall(optional.flatMap(([, p]) => (p as string).split(' ')));
  } catch (e) {
    console.log(`could not install ${optional.map(([bin]) => bin).join(', ')} (${(e as Error).message.split('\n')[0]}); their rows read n/a`);
  }
}

const firstLine = (cmd: string, args: string[]): string | undefined => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]?.trim();
  } catch {
    return undefined;
  }
};

/** What the numbers were measured on. */
function machine() {
  const pkg = (name: string) => firstLine('dpkg-query', ['-W', '-f=${Version}', name]);
  return {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    fileSystem: firstLine('findmnt', ['-no', 'FSTYPE', '-T', '/tmp']),
    node: process.version,
    xrootd: pkg('xrootd-server'),
    curl: firstLine('curl', ['--version'])?.split(' ')[1],
    gfal2: pkg('gfal2'),
    rclone: firstLine('rclone', ['version'])?.split(' ')[1],
  };
}

const pidOf = (s: XrootdServer): number | undefined => {
  try {
    return Number(readFileSync(s.pidFile, 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
};

async function main(): Promise<void> {
  const plan = process.argv.includes('--quick') ? QUICK : FULL;
  const onlyArg = process.argv.indexOf('--only');
  const only = onlyArg > 0 ? new Set((process.argv[onlyArg + 1] ?? '').split(',')) : undefined;
  const wanted = (name: string) => !only || only.has(name);
  const listingTools = wanted('listing') || wanted('tree') ? LISTING_TOOLS : { required: [], optional: [] };
  const peerTools = wanted('peers') ? PEER_TOOLS : { required: [], optional: [] };
  ensureTools({ required: [...listingTools.required, ...peerTools.required], optional: [...listingTools.optional, ...peerTools.optional] });
  const started = Date.now();
  const tb: Testbed = await startTestbed();
  const work = await mkdtemp('/tmp/petrel-bench-');
  const results: CaseResult[] = [];
  const { a, b } = tb.servers;
  const watchdog = createWatchdog([a, b], tb.caFile);
  let agentPid: number | undefined;
  const serverPids = () => [pidOf(a), pidOf(b)].filter((p): p is number => p !== undefined);
  const cpu = cpuProbe(() => ({ agent: agentPid, servers: serverPids() }));
  const ctx = (label: string): CompareContext => ({ cpu, watchdog, label });
  try {
    const env = await agentHome(join(work, 'home'), AGENT_CONFIG, tb.caFile);
    const petrel = (args: string[], e = env) => timed(process.execPath, [CLI, ...args], e);
    await petrel(['agent', 'start']);
    agentPid = await agentPidOf(env);
    const token = await mintToken(tb, { scope: 'storage.read:/ storage.create:/ storage.modify:/', expiresIn: 6 * 3600 });
    const tokenFile = join(work, 'token');
    await writeFile(tokenFile, token, { mode: 0o600 });
    const curl = ['-s', '-f', '--cacert', tb.caFile, '-H', `Authorization: Bearer ${token}`];
    const mb = plan.bigBytes / 1e6;
    const size = `${(plan.bigBytes / 2 ** 30).toFixed(plan.bigBytes >= 2 ** 30 ? 0 : 2)} GiB`;
    const add = (name: string, unit: string, runs: Runs, perRun: (secs: number[]) => number[], ref: { tool: string; perRun?: (secs: number[]) => number[] } | undefined, betterIsLower: boolean, extra: { target?: { min: number; text: string }; note?: string } = {}) => {
      const p = stats(perRun(runs.petrel));
      const r = ref && runs.reference.length ? stats((ref.perRun ?? perRun)(runs.reference)) : undefined;
      const ratio = r ? (betterIsLower ? r.median / p.median : p.median / r.median) : undefined;
      const petrelCpu = medianCpu(runs.petrelCpu);
      const referenceCpu = medianCpu(runs.referenceCpu);
      results.push({
        name,
        unit,
        petrel: p,
        ...(petrelCpu ? { petrelCpu } : {}),
        ...(r && ref ? { reference: { tool: ref.tool, stats: r, ...(referenceCpu ? { cpu: referenceCpu } : {}) } } : {}),
        ...(ratio !== undefined ? { ratio } : {}),
        ...(extra.target ? { target: extra.target.text, met: (ratio ?? 0) >= extra.target.min } : {}),
        ...(extra.note ? { note: extra.note } : {}),
      });
      const c = (x: CpuSplit | undefined) => (x ? ` (CPU ${x.client.toFixed(2)} + ${x.servers.toFixed(2)} s)` : '');
      console.log(`${name}: petrel ${p.median.toFixed(3)}${c(petrelCpu)}${r ? `, ${ref?.tool} ${r.median.toFixed(3)}${c(referenceCpu)}, ratio ${ratio?.toFixed(2)}` : ''}`);
    };

    const gfalEnv = { ...process.env, BEARER_TOKEN: token, X509_CERT_DIR: tb.caDir };
    const gfal = (args: string[]) => timed('gfal-copy', ['-f', '-K', 'adler32', ...args], gfalEnv);
    const throughput = (secs: number[]) => secs.map((s) => mb / s);
    const rate = (files: number) => (secs: number[]) => secs.map((s) => files / s);
    const same = (secs: number[]) => secs;
    let round = 0;
    // The big file the get-like cases read, written once. XRootD keeps a file's checksum once
    // computed: it is asked for now, so every run finds it known. (The copy case writes its own
    // afresh, so its source's checksum is not known beforehand: it comes after these cases.)
    let bigWritten: Promise<void> | undefined;
    const bigSource = () =>
      (bigWritten ??= (async () => {
        await writeDataFile(a, '/bench/big.bin', plan.bigBytes);
        await timed('curl', [...curl, '-I', '-H', 'Want-Digest: adler32', `${a.url}/bench/big.bin`]);
      })());

    if (wanted('get')) {
      await bigSource();
      const get = await compare(
        ctx('get'),
        plan.runs,
        () => petrel(['get', '--async', '--wait', '-q', '--token', tokenFile, `${a.url}/bench/big.bin`, join(work, 'get.bin')]).finally(() => rm(join(work, 'get.bin'), { force: true })),
        () => timed('curl', [...curl, '-o', join(work, 'curl.bin'), `${a.url}/bench/big.bin`]).finally(() => rm(join(work, 'curl.bin'), { force: true })),
      );
      add(`get ${size}, adler32 verified, fsynced`, 'MB/s', get, throughput, { tool: 'curl -o file' }, false, {
        target: { min: 0.95, text: '≥ 0.95×' },
        note: 'curl neither checks a checksum nor fsyncs; Petrel does both, and the time includes starting the CLI and the job.',
      });
      const floor = await compare(
        ctx('https floor'),
        plan.runs,
        () => timed(process.execPath, [FLOOR, 'get', `${a.url}/bench/big.bin`, tokenFile, tb.caFile]),
        () => timed('curl', [...curl, '-o', '/dev/null', `${a.url}/bench/big.bin`]),
      );
      add(`Node's HTTPS alone: GET ${size}, body discarded`, 'MB/s', floor, throughput, { tool: 'curl -o /dev/null' }, false, {
        note: 'no Petrel code: node:https reading the body and dropping it. What a download through Node can reach on this machine, at best.',
      });
    }

    if (wanted('peers')) {
      await bigSource();
      const peers = peerGets({ url: `${a.url}/bench/big.bin`, token, caFile: tb.caFile, caDir: tb.caDir }, commandExists);
      const dest = (name: string) => join(work, `peer-${name.replace(/\W+/g, '-')}.bin`);
      const runs = await compareAll(
        ctx('peers'),
        plan.runs,
        () => petrel(['get', '--async', '--wait', '-q', '--token', tokenFile, `${a.url}/bench/big.bin`, join(work, 'get.bin')]).finally(() => rm(join(work, 'get.bin'), { force: true })),
        Object.fromEntries(Object.entries(peers).map(([name, get]) => [name, () => get(dest(name))])),
      );
      for (const [name, r] of Object.entries(runs)) {
        add(`get ${size} (--async, adler32 verified, fsynced) against ${name}`, 'MB/s', r, throughput, { tool: `${name} (no checksum, no fsync)` }, false, {
          note: `one rotation per round: Petrel, then ${Object.keys(runs).join(', ')}; the peers neither verify a checksum nor fsync.`,
        });
      }
      if (!Object.keys(runs).length) console.log('peers: none of davix-get, xrdcp, rclone is installed');
    }

    if (wanted('streams')) {
      // The same get through two agents in one rotation: one made to split every large file into
      // two ranges at once (the second on a worker thread), however near the server, and the
      // default, which on loopback takes one stream (the server answers within the 10 ms that
      // mark a distant one). Each run's agent peak RSS is its own (VmHWM reset before it).
      await bigSource();
      const twoEnv = await agentHome(join(work, 'two-streams'), { ...AGENT_CONFIG, download: { streams: 2, minRoundTripMs: 0 } }, tb.caFile);
      await petrel(['agent', 'start'], twoEnv);
      const twoPid = await agentPidOf(twoEnv);
      const twoCpu = cpuProbe(() => ({ agent: twoPid, servers: serverPids() }));
      const peaks: Record<'petrel' | 'reference', number[]> = { petrel: [], reference: [] };
      const getWith = (e: NodeJS.ProcessEnv, pid: number, side: 'petrel' | 'reference') => async () => {
        await resetPeakRss(pid);
        const secs = await petrel(['get', '--async', '--wait', '-q', '--token', tokenFile, `${a.url}/bench/big.bin`, join(work, 'get.bin')], e).finally(() => rm(join(work, 'get.bin'), { force: true }));
        peaks[side].push(await rssMB(pid, 'VmHWM'));
        return secs;
      };
      const twoCtx: CompareContext = { ...ctx('streams'), cpu: (side) => (side === 'petrel' ? twoCpu('petrel') : cpu('petrel')) };
      const runs = await compare(twoCtx, plan.runs, getWith(twoEnv, twoPid, 'petrel'), getWith(env, agentPid as number, 'reference')).finally(() => petrel(['agent', 'stop'], twoEnv));
      const mbs = (xs: number[]) => `${stats(xs).median.toFixed(0)} MB (${stats(xs).min.toFixed(0)}–${stats(xs).max.toFixed(0)})`;
      add(`get ${size} --async in two ranges at once (forced: download.minRoundTripMs 0) against one stream`, 'MB/s', runs, throughput, { tool: 'petrel get --async, default (one stream on loopback)' }, false, {
        note: `CPU is the agent's and the CLI's; agent peak RSS per run: two streams ${mbs(peaks.petrel)}, one stream ${mbs(peaks.reference)}.`,
      });
    }

    if (wanted('latency')) {
      // A distant server: every byte through a proxy that adds 50 ms of round trip and keeps at
      // most 6 MiB in flight per connection (Linux's default largest receive window), so one
      // connection moves at most about 126 MB/s. Petrel's default (ranges at once, since the first
      // reply waited longer than 10 ms) against one stream, curl and the single-stream peers.
      await bigSource();
      const target = new URL(a.url);
      const proxy = await startLatencyProxy({ host: '127.0.0.1', port: Number(target.port) }, LATENCY_RTT_MS, LATENCY_WINDOW);
      const far = `https://localhost:${proxy.port}/bench/big.bin`;
      const oneEnv = await agentHome(join(work, 'one-stream'), { ...AGENT_CONFIG, download: { streams: 1 } }, tb.caFile);
      await petrel(['agent', 'start'], oneEnv);
      // The references' CPU includes the one-stream agent's (idle, a few ms, while the others run).
      const onePid = await agentPidOf(oneEnv);
      const oneCpu = cpuProbe(() => ({ agent: onePid, servers: serverPids() }));
      const farCtx: CompareContext = { ...ctx('latency'), cpu: (side) => (side === 'petrel' ? cpu('petrel') : oneCpu('petrel')) };
      try {
        const getWith = (e: NodeJS.ProcessEnv) => () => petrel(['get', '--async', '--wait', '-q', '--token', tokenFile, far, join(work, 'get.bin')], e).finally(() => rm(join(work, 'get.bin'), { force: true }));
        const peers = peerGets({ url: far, token, caFile: tb.caFile, caDir: tb.caDir }, commandExists, 4);
        const dest = (name: string) => join(work, `far-${name.replace(/\W+/g, '-')}.bin`);
        const runs = await compareAll(farCtx, LATENCY_ROUNDS, getWith(env), {
          'petrel, one stream (download.streams 1)': getWith(oneEnv),
          'curl -o file': () => timed('curl', [...curl, '-o', dest('curl'), far]).finally(() => rm(dest('curl'), { force: true })),
          ...Object.fromEntries(Object.entries(peers).map(([name, get]) => [name, () => get(dest(name))])),
        });
        for (const [name, r] of Object.entries(runs)) {
          add(`get ${size} over ${LATENCY_RTT_MS} ms RTT, ${LATENCY_WINDOW >> 20} MiB window (--async, adler32 verified, fsynced) against ${name}`, 'MB/s', r, throughput, { tool: name }, false, {
            note: `one rotation per round (${LATENCY_ROUNDS} rounds): Petrel's default, then ${Object.keys(runs).join(', ')}. CPU is the client's: for Petrel the CLI's and its agent's.`,
          });
        }
      } finally {
        await petrel(['agent', 'stop'], oneEnv);
        await proxy.close();
      }
    }

    if (wanted('put')) {
      const local = join(work, 'up.bin');
      execFileSync('head', ['-c', String(plan.bigBytes), '/dev/urandom'], { stdio: ['ignore', openSync(local, 'w'), 'inherit'] });
      const curlPut = () => timed('curl', [...curl, '-T', local, `${b.url}/bench/put-curl.bin`]);
      for (const checksum of ['adler32', 'none'] as const) {
        const put = await compare(ctx(`put ${checksum}`), plan.runs, () => petrel(['put', '--async', '--wait', '-q', '--checksum', checksum, '--token', tokenFile, local, `${b.url}/bench/put-petrel.bin`]), curlPut);
        add(`put ${size}, ${checksum === 'none' ? 'no checksum' : 'adler32 verified'}`, 'MB/s', put, throughput, { tool: 'curl -T' }, false, {
          target: { min: 0.95, text: '≥ 0.95×' },
          ...(checksum === 'adler32' ? { note: 'verifying asks the server for the adler32 of what it stored: XRootD reads the new file back to compute it (its CPU is in the servers column).' } : {}),
        });
      }
      const floor = await compare(ctx('https floor put'), plan.runs, () => timed(process.execPath, [FLOOR, 'put', `${b.url}/bench/put-floor.bin`, tokenFile, tb.caFile, local]), curlPut);
      add(`Node's HTTPS alone: PUT ${size}`, 'MB/s', floor, throughput, { tool: 'curl -T' }, false, {
        note: 'no Petrel code: node:https sending the file 64 KiB at a time, as Petrel\'s uploads do. The best an upload through Node reaches here.',
      });
      if (wanted('peers')) {
        const puts = peerPuts({ url: `${b.url}/bench/`, token, caFile: tb.caFile, caDir: tb.caDir }, local, commandExists);
        const runs = await compareAll(ctx('put peers'), plan.runs, () => petrel(['put', '--async', '--wait', '-q', '--checksum', 'none', '--token', tokenFile, local, `${b.url}/bench/put-petrel.bin`]), puts);
        for (const [name, r] of Object.entries(runs)) {
          add(`put ${size} (no checksum) against ${name}`, 'MB/s', r, throughput, { tool: name }, false, { note: `one rotation per round: Petrel, then ${Object.keys(runs).join(', ')}; none of them verifies a checksum.` });
        }
      }
      await rm(local, { force: true });
    }

    if (wanted('copy')) {
      await writeDataFile(a, '/bench/big.bin', plan.bigBytes);
      await writeDataFile(a, '/bench/one-byte', Buffer.from('x'));
      const curlCopy = (path: string) => () => timed('curl', [...curl, '-X', 'COPY', '-H', `Source: ${a.url}${path}`, '-H', `TransferHeaderAuthorization: Bearer ${token}`, '-H', 'Credential: none', '-H', 'Overwrite: T', `${b.url}/bench/copy-curl`]);
      const copy = (path: string, checksum: string) => () => petrel(['copy', '--async', '--wait', '-q', '--overwrite', '--checksum', checksum, '--token', tokenFile, `${a.url}${path}`, `${b.url}/bench/copy-petrel`]);
      const plain = await compare(ctx('copy'), plan.runs, copy('/bench/big.bin', 'none'), curlCopy('/bench/big.bin'));
      add(`copy ${size} (pull)`, 'MB/s', plain, throughput, { tool: 'curl COPY' }, false, { target: { min: 0.98, text: '≥ 0.98×' } });
      const verified = await compare(ctx('copy adler32'), plan.runs, copy('/bench/big.bin', 'adler32'), curlCopy('/bench/big.bin'));
      add(`copy ${size} (pull), adler32 of both ends compared`, 'MB/s', verified, throughput, { tool: 'curl COPY' }, false, {
        note: 'the destination computes the checksum of the new copy (a read of the whole file); curl compares nothing.',
      });
      const fixed = await compare(ctx('copy 1 byte'), plan.runs, copy('/bench/one-byte', 'none'), curlCopy('/bench/one-byte'));
      add('copy of 1 byte (what a copy costs beside its data)', 's', fixed, same, { tool: 'curl COPY' }, true, {
        note: 'starting the CLI (Node), submitting and following the job: the fixed cost a big copy carries on top of the servers\' time.',
      });
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
      // As a user would write it: the token read once, no process per file but curl's.
      const curlLoop = join(work, 'loop.sh');
      await writeFile(curlLoop, `set -e\nmkdir -p "$1"\nTOKEN=$(cat ${tokenFile})\nwhile read -r u; do curl -s -f --cacert ${tb.caFile} -H "Authorization: Bearer $TOKEN" -o "$1/\${u##*/}" "$u"; done < "$2"\n`);
      const dir = () => join(work, `small-${round++}`);
      const petrelSmall = () => petrel(['get', '--async', '--wait', '-q', '--token', tokenFile, '--from-file', list, `${dir()}/`]);
      const viaCurl = await compare(ctx('small/curl'), plan.runs, petrelSmall, () => timed('bash', [curlLoop, dir(), curlList]));
      add(`${n} × 64 KiB in one job, adler32 verified, fsynced`, 'files/s', viaCurl, rate(n), { tool: 'curl loop (no checksum)', perRun: rate(plan.curlLoopFiles) }, false, { target: { min: 10, text: '≥ 10×' } });
      const floor = await compare(ctx('small/floor'), plan.runs, () => timed(process.execPath, [FLOOR, 'small', list, tokenFile, tb.caFile, dir()]), () => timed('bash', [curlLoop, dir(), curlList]));
      add(`Node's HTTPS alone: ${n} × 64 KiB, 8 at a time`, 'files/s', floor, rate(n), { tool: 'curl loop (no checksum)', perRun: rate(plan.curlLoopFiles) }, false, {
        note: 'no Petrel job machinery: per file a GET, its adler32, a new file written and fsynced, a digest HEAD (one at a time per origin) compared with it, a rename and a directory fsync, over node:https, as Petrel does them. Whether Node here can reach the target at all.',
      });
      if (wanted('peers')) {
        const names = Array.from({ length: n }, (_, i) => `f${i}`);
        const many = peerManyGets({ url: `${a.url}/bench/small/`, token, caFile: tb.caFile, caDir: tb.caDir }, names, dir, commandExists, work);
        const runs = await compareAll(ctx('small peers'), plan.runs, petrelSmall, many);
        for (const [name, r] of Object.entries(runs)) {
          add(`${n} × 64 KiB in one job against ${name}`, 'files/s', r, rate(n), { tool: `${name} (no checksum, no fsync)` }, false, {
            note: `parallel peers, one process each, 8 at a time as Petrel's bench agent; one rotation per round: Petrel, then ${Object.keys(runs).join(', ')}.`,
          });
        }
      }
      const viaGfal = await compare(ctx('small/gfal'), plan.runs, petrelSmall, async () => {
        const d = dir();
        await mkdir(d);
        return gfal(['--from-file', gfalList, `file://${d}/`]);
      });
      add(`${n} × 64 KiB in one job, adler32 verified, fsynced`, 'files/s', viaGfal, rate(n), { tool: 'gfal-copy --from-file (adler32)', perRun: rate(plan.gfalFiles) }, false, { target: { min: 3, text: '≥ 3×' } });
    }

    if (wanted('copies')) {
      const n = plan.copies;
      const data = randomBytes(MiB);
      await Promise.all(Array.from({ length: n }, (_, i) => writeDataFile(a, `/bench/mib/f${i}`, data)));
      const list = join(work, 'copies.txt');
      let r = 0;
      const copies = await compare(
        ctx('copies'),
        plan.runs,
        async () => {
          const dest = `${b.url}/bench/copies-${r++}/`;
          await writeFile(list, Array.from({ length: n }, (_, i) => `${a.url}/bench/mib/f${i}`).join('\n'));
          return petrel(['copy', '--async', '--wait', '-q', '--token', tokenFile, '--from-file', list, dest]);
        },
        async () => {
          const start = process.hrtime.bigint();
          const at = r;
          for (let i = 0; i < plan.gfalCopies; i++) await gfal([`${a.url}/bench/mib/f${i}`, `${b.url}/bench/gfal-${at}/f${i}`]);
          return Number(process.hrtime.bigint() - start) / 1e9;
        },
      );
      add(`${n} × 1 MiB third-party copies in one job, adler32 compared`, 'copies/s', copies, rate(n), { tool: 'gfal-copy loop (adler32)', perRun: rate(plan.gfalCopies) }, false, { target: { min: 3, text: '≥ 3×' } });
    }

    if (wanted('version')) {
      const version = await compare(ctx('version'), Math.max(5, plan.runs * 3), () => petrel(['--version']), () => timed(process.execPath, ['-e', '0']));
      add('petrel --version', 's', version, same, { tool: 'node -e 0' }, true, { target: { min: 1 / 1.6, text: '≤ 1.6× node' } });
    }
    await petrel(['agent', 'stop']);
    agentPid = undefined;

    if (wanted('listing')) {
      // No agent runs now: Petrel's side is the one `petrel ls` process, its CPU and memory alone.
      const n = plan.listed;
      const dir = '/bench/listing';
      await makeListingDir(a, dir, n, 1024);
      const listToken = await mintToken(tb, { scope: `storage.read:${dir}`, expiresIn: 3600 });
      const listTokenFile = join(work, 'listing-token');
      await writeFile(listTokenFile, listToken, { mode: 0o600 });
      const l = listers(tb, a, { dir, n, cli: CLI, petrelEnv: env, token: listToken, tokenFile: listTokenFile, workDir: work });
      const runs = Math.max(3, plan.runs);
      const name = `ls of ${n.toLocaleString('en')} files (PROPFIND Depth 1)`;
      // One unmeasured listing by each tool first: the caches of the server and the kernel warm
      // for all, and a tool that cannot list this server is found out (its row reads n/a).
      const unusable = new Map<Lister, string>();
      for (const x of [l.petrel, l.gfal, l.rclone]) {
        if (!commandExists(x.command)) unusable.set(x, `${x.command} is not installed`);
        else await x.run().catch((e: unknown) => unusable.set(x, (e as Error).message));
        x.rssMB.length = 0;
        x.entries.length = 0;
      }
      const petrelFailed = unusable.get(l.petrel);
      if (petrelFailed) throw new Error(`listing: ${petrelFailed}`);
      const mb = (xs: number[]) => (xs.length ? `${stats(xs).median.toFixed(0)} MB` : 'n/a');
      for (const ref of [l.gfal, l.rclone]) {
        let runsOf: Runs | undefined;
        if (!unusable.has(ref)) {
          try {
            runsOf = await compare(ctx(`listing/${ref.command}`), runs, l.petrel.run, ref.run);
          } catch (e) {
            unusable.set(ref, (e as Error).message);
          }
        }
        const why = unusable.get(ref);
        if (runsOf) {
          add(name, 's', runsOf, same, { tool: ref.tool }, true, {
            note: `one listing of ${n.toLocaleString('en')} files of 1 KiB on XRootD a, alternately, median of ${runs}; every run's output checked (all ${n.toLocaleString('en')} names, once each). Petrel's time includes starting Node and the CLI, and its two PROPFINDs (Depth 0 on the directory, then Depth 1); ${ref.tool} peak RSS ${mb(ref.rssMB)}.`,
          });
        } else {
          console.log(`${name} vs ${ref.tool}: n/a (${why})`);
          const solo = await compare(ctx(`listing/${ref.command} n/a`), runs, l.petrel.run);
          add(`${name}; ${ref.tool}: n/a`, 's', solo, same, undefined, true, { note: `${ref.tool} could not be measured: ${why}` });
        }
      }
      const entries = [...new Set([l.petrel, l.gfal, l.rclone].flatMap((x) => x.entries.map((e) => `${x.tool} ${e}`)))].join(', ');
      console.log(`listing: entries per run: ${entries}; peak RSS petrel ${mb(l.petrel.rssMB)}, gfal-ls ${mb(l.gfal.rssMB)}, rclone ${mb(l.rclone.rssMB)}`);
      const rss = stats(l.petrel.rssMB);
      const gfalRss = l.gfal.rssMB.length ? stats(l.gfal.rssMB) : undefined;
      results.push({
        name: `petrel ls peak RSS, ${n.toLocaleString('en')} entries`,
        unit: 'MB',
        petrel: rss,
        ...(gfalRss ? { reference: { tool: 'gfal-ls -l', stats: gfalRss }, ratio: gfalRss.median / rss.median } : {}),
        note: `maximum resident set of the process (GNU time %M), over all of Petrel's measured listings; rclone lsf ${mb(l.rclone.rssMB)}.`,
      });
    }

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

    if (wanted('tape')) {
      // An agent of its own, polling often (files come on disk 0.5–3 s after their stage request).
      const tenv = await agentHome(join(work, 'tape-home'), { tape: TAPE_CONFIG }, tb.caFile);
      await petrel(['agent', 'start'], tenv);
      try {
        const t = await measureTape(tb, { socket: socketPath(tenv), files: plan.tapeFiles, minDelayMs: 500, maxDelayMs: 3_000, timeoutMs: 120_000 });
        const perFileCalls = t.perFile.stageRequests + t.perFile.polls;
        const ratio = perFileCalls / t.tapeCalls;
        const stageRatio = t.perFile.stageRequests / t.stageRequests;
        console.log(
          `tape: ${t.files.toLocaleString('en')} files ${t.state} in ${t.wallSeconds.toFixed(2)} s; ${t.stageRequests} stage requests (largest ${t.largestRequest} files), ${t.polls} polls, ${t.tapeCalls} tape API calls in all; ` +
            `agent CPU ${t.agentCpuSeconds.toFixed(2)} s, RSS idle ${t.idleRssMB.toFixed(0)} MB, peak ${t.peakRssMB.toFixed(0)} MB; stand-in CPU ${t.standInCpuSeconds.toFixed(2)} s; ` +
            `per file: ${t.perFile.stageRequests.toLocaleString('en')} stage requests + ${t.perFile.polls.toLocaleString('en')} polls, ratio ${ratio.toFixed(1)} (stage requests alone ${stageRatio.toFixed(1)})`,
        );
        const one = (x: number) => ({ median: x, min: x, max: x, runs: [x] });
        const n = t.files.toLocaleString('en');
        results.push({
          name: `prestage of ${n} files: tape API calls (${t.stageRequests} stage requests, ${t.polls} polls)`,
          unit: 'calls',
          petrel: one(t.tapeCalls),
          reference: { tool: 'one stage request per file, each polled', stats: one(perFileCalls) },
          ratio,
          target: '≤ 50 stage requests',
          met: t.stageRequests <= 50 && t.state === 'succeeded',
          note: `the reference is counted, not run: ${t.perFile.stageRequests.toLocaleString('en')} stage requests and ${t.perFile.polls.toLocaleString('en')} polls, each file's request polled on the agent's schedule (first after ${TAPE_CONFIG.firstPollMs} ms, doubling to ${TAPE_CONFIG.maxPollMs} ms) until its file is on disk (${stageRatio.toFixed(0)}× the stage requests alone). Petrel's count is every call the stand-in received: discovery, stage, poll, DELETE. Agent tape config ${JSON.stringify(TAPE_CONFIG)}.`,
        });
        results.push({
          name: `prestage of ${n} files, on disk 0.5–3 s after their stage request: submit to the job's end`,
          unit: 's',
          petrel: one(t.wallSeconds),
          petrelCpu: { client: t.agentCpuSeconds, servers: t.standInCpuSeconds },
          ...(t.state === 'succeeded' ? {} : { target: 'succeeded', met: false }),
          note: `CPU: the agent, and the stand-in (it runs in the bench process, which also follows the job). A full batch goes out at once; at most ${TAPE_CONFIG.maxRequestsPerEndpoint} stage requests are outstanding at the endpoint, so the ${t.stageRequests} go out in waves.`,
        });
        results.push({ name: `agent peak RSS during the prestage of ${n} files (idle ${t.idleRssMB.toFixed(0)} MB)`, unit: 'MB', petrel: one(t.peakRssMB) });
      } finally {
        await petrel(['agent', 'stop'], tenv);
      }
    }

    if (wanted('tree')) {
      // An agent of its own, so its peak memory is the listing's; the stand-in holds every GET.
      const shape = { dirs: 100, perDir: 1000 };
      const files = shape.dirs * shape.perDir;
      const server = await startTreeServer(tb, shape);
      const renv = await agentHome(join(work, 'tree-home'), AGENT_CONFIG, tb.caFile);
      await petrel(['agent', 'start'], renv);
      try {
        const t = await measureTreeListing({ socket: socketPath(renv), url: server.url, files, destination: join(work, 'tree-dest') });
        const listings = server.listings();
        const ref = commandExists('rclone') ? await rcloneTreeListing({ url: server.url, caFile: tb.caFile, files, workDir: work }).catch((e: unknown) => (e as Error).message) : 'rclone is not installed';
        const n = files.toLocaleString('en');
        console.log(
          `tree: ${n} files listed by the agent in ${t.listSeconds.toFixed(2)} s (${listings} PROPFINDs), agent CPU ${t.agentCpuSeconds.toFixed(2)} s, RSS idle ${t.idleRssMB.toFixed(0)} MB, peak ${t.peakRssMB.toFixed(0)} MB; cancel ${t.cancelSeconds.toFixed(2)} s; ` +
            (typeof ref === 'string' ? `rclone n/a (${ref})` : `rclone lsf -R ${ref.seconds.toFixed(2)} s, peak RSS ${ref.rssMB.toFixed(0)} MB`),
        );
        const one = (x: number) => ({ median: x, min: x, max: x, runs: [x] });
        results.push({
          name: `get -r of ${n} files (${shape.dirs} directories): listed into the queue by the agent`,
          unit: 's',
          petrel: one(t.listSeconds),
          ...(typeof ref === 'string' ? {} : { reference: { tool: 'rclone lsf -R --files-only', stats: one(ref.seconds) }, ratio: ref.seconds / t.listSeconds }),
          note: `from submit to the job's leaving \`listing\`, every file stored as a queued transfer (rclone only prints the names); agent CPU ${t.agentCpuSeconds.toFixed(2)} s. The storage is a stand-in in the bench process answering PROPFIND as XRootD does and holding every GET; cancelling the listed job took ${t.cancelSeconds.toFixed(2)} s.${typeof ref === 'string' ? ` rclone: n/a (${ref})` : ''}`,
        });
        results.push({
          name: `agent peak RSS while listing ${n} files (idle ${t.idleRssMB.toFixed(0)} MB)`,
          unit: 'MB',
          petrel: one(t.peakRssMB),
          ...(typeof ref === 'string' ? {} : { reference: { tool: 'rclone lsf -R', stats: one(ref.rssMB) }, ratio: ref.rssMB / t.peakRssMB }),
          target: '< 120 MB',
          met: t.peakRssMB < 120,
        });
      } finally {
        await petrel(['agent', 'stop'], renv);
        await server.close();
      }
    }
  } finally {
    await tb.stop();
    await rm(work, { recursive: true, force: true });
  }
  printTable(results);
  for (const i of watchdog.incidents) console.log(`- incident: XRootD ${i.server} stopped answering during ${i.during} at ${i.at}; restarted, run measured again`);
  const minutes = (Date.now() - started) / 60_000;
  console.log(`\n${plan === QUICK ? 'quick' : 'full'} run in ${minutes.toFixed(1)} min`);
  const out = join(ROOT, 'bench', 'results');
  await mkdir(out, { recursive: true });
  const report = { date: new Date().toISOString(), quick: plan === QUICK, minutes, machine: machine(), agentConfig: AGENT_CONFIG, results, incidents: watchdog.incidents };
  await writeFile(join(out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results: ${join(out, 'latest.json')}`);
}

/** The pid of the agent answering in `env` (its CPU is Petrel's). */
async function agentPidOf(env: NodeJS.ProcessEnv): Promise<number> {
  const client = createAgentClient({ socket: socketPath(env), timeoutMs: 10_000 });
  try {
    return (await client.health()).pid;
  } finally {
    await client.close();
  }
}

await main();
