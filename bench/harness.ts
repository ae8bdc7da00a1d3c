// Timing and reporting for `npm run bench`: each case runs Petrel and its reference tool the
// same number of times in the same run, and the ratio compares their medians.
import { spawn } from 'node:child_process';
import type { CpuSplit } from './cpu.js';
import type { Watchdog } from './watchdog.js';

export interface Stats {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export interface Side {
  stats: Stats;
  /** Median CPU seconds per run: the command (and for Petrel the agent), and the storage servers. */
  cpu?: CpuSplit;
}

export interface CaseResult {
  name: string;
  /** What a number means: `s`, `ms`, `MB` (lower is better) or `MB/s`, `files/s` (higher is better). */
  unit: string;
  petrel: Stats;
  petrelCpu?: CpuSplit;
  reference?: { tool: string } & Side;
  /** Petrel relative to the reference, oriented so that > 1 means Petrel is better. */
  ratio?: number;
  target?: string;
  met?: boolean;
  /** What a reader needs to read the row right (what is and is not included). */
  note?: string;
}

export function stats(runs: number[]): Stats {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted.at(-1) as number, runs };
}

function medianOf(xs: number[]): number {
  return stats(xs).median;
}

/** Runs a command to its end; rejects with its output when it fails. Returns wall seconds. */
export function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    // Kept for the error message: a failed job says why on stdout.
    let err = '';
    const keep = (d: Buffer) => (err = (err + d.toString()).slice(-2000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => {
      const secs = Number(process.hrtime.bigint() - start) / 1e9;
      if (code === 0) resolve(secs);
      else reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')} … exited ${code}: ${err.slice(-500)}`));
    });
  });
}

export interface Runs {
  petrel: number[];
  reference: number[];
  petrelCpu: CpuSplit[];
  referenceCpu: CpuSplit[];
}

export interface CompareContext {
  /** Starts a CPU measurement of one side's run; the function it returns ends it. */
  cpu: (side: 'petrel' | 'reference') => () => CpuSplit;
  watchdog: Watchdog;
  label: string;
}

/**
 * One measured run under the watchdog: a run during which a server had to be restarted is
 * measured again (twice at most), and one that failed then is not counted as a failure.
 */
async function measured(ctx: CompareContext, side: 'petrel' | 'reference', run: () => Promise<number>): Promise<{ secs: number; cpu: CpuSplit }> {
  for (let attempt = 0; ; attempt++) {
    const incidents = ctx.watchdog.incidents.length;
    const stop = ctx.cpu(side);
    try {
      const secs = await ctx.watchdog.watch(`${ctx.label} (${side})`, run);
      const cpu = stop();
      if (ctx.watchdog.incidents.length === incidents || attempt >= 2) return { secs, cpu };
    } catch (e) {
      if (ctx.watchdog.incidents.length === incidents || attempt >= 2) throw e;
    }
  }
}

/** Alternates Petrel and the reference, `n` times each, so both see the same machine state. */
export async function compare(ctx: CompareContext, n: number, petrel: () => Promise<number>, reference?: () => Promise<number>): Promise<Runs> {
  const out: Runs = { petrel: [], reference: [], petrelCpu: [], referenceCpu: [] };
  for (let i = 0; i < n; i++) {
    const p = await measured(ctx, 'petrel', petrel);
    out.petrel.push(p.secs);
    out.petrelCpu.push(p.cpu);
    if (reference) {
      const r = await measured(ctx, 'reference', reference);
      out.reference.push(r.secs);
      out.referenceCpu.push(r.cpu);
    }
  }
  return out;
}

/**
 * Petrel against several references in one rotation (Petrel, then each reference, `n` rounds),
 * so every tool meets the same machine state; one `Runs` per reference, sharing Petrel's runs.
 */
export async function compareAll(ctx: CompareContext, n: number, petrel: () => Promise<number>, references: Record<string, () => Promise<number>>): Promise<Record<string, Runs>> {
  const shared = { petrel: [] as number[], petrelCpu: [] as CpuSplit[] };
  const out: Record<string, Runs> = {};
  for (const name of Object.keys(references)) out[name] = { petrel: shared.petrel, petrelCpu: shared.petrelCpu, reference: [], referenceCpu: [] };
  for (let i = 0; i < n; i++) {
    const p = await measured(ctx, 'petrel', petrel);
    shared.petrel.push(p.secs);
    shared.petrelCpu.push(p.cpu);
    for (const [name, run] of Object.entries(references)) {
      const r = await measured({ ...ctx, label: `${ctx.label} ${name}` }, 'reference', run);
      out[name]?.reference.push(r.secs);
      out[name]?.referenceCpu.push(r.cpu);
    }
  }
  return out;
}

export function medianCpu(splits: CpuSplit[]): CpuSplit | undefined {
  if (!splits.length) return undefined;
  return { client: medianOf(splits.map((s) => s.client)), servers: medianOf(splits.map((s) => s.servers)) };
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
const cpuText = (c: CpuSplit | undefined) => (c ? `${c.client.toFixed(2)} / ${c.servers.toFixed(2)}` : '–');

export function printTable(results: CaseResult[], log: (line: string) => void = console.log): void {
  log('');
  log('| case | Petrel median (min–max) | reference | reference median (min–max) | ratio | target | CPU s per run, client / servers: Petrel · reference |');
  log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    const p = `${fmt(r.petrel.median)} ${r.unit} (${fmt(r.petrel.min)}–${fmt(r.petrel.max)})`;
    const ref = r.reference ? `${fmt(r.reference.stats.median)} ${r.unit} (${fmt(r.reference.stats.min)}–${fmt(r.reference.stats.max)})` : '–';
    const ratio = r.ratio === undefined ? '–' : `${r.ratio.toFixed(2)}×`;
    const target = r.target ? `${r.target} ${r.met ? 'met' : 'MISSED'}` : '–';
    const cpu = r.petrelCpu ? `${cpuText(r.petrelCpu)} · ${cpuText(r.reference?.cpu)}` : '–';
    log(`| ${r.name} | ${p} | ${r.reference?.tool ?? '–'} | ${ref} | ${ratio} | ${target} | ${cpu} |`);
  }
  const notes = results.filter((r) => r.note);
  if (notes.length) {
    log('');
    for (const r of notes) log(`- ${r.name}: ${r.note}`);
  }
}
