// Timing and reporting for `npm run bench`: each case runs Petrel and its reference tool the
// same number of times in the same run, and the ratio compares their medians.
import { spawn } from 'node:child_process';

export interface Stats {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export interface CaseResult {
  name: string;
  /** What a number means: `s` (lower is better) or `MB/s`, `files/s` (higher is better). */
  unit: string;
  petrel: Stats;
  reference?: { tool: string; stats: Stats };
  /** Petrel relative to the reference, oriented so that > 1 means Petrel is better. */
  ratio?: number;
  target?: string;
  met?: boolean;
}

export function stats(runs: number[]): Stats {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted.at(-1) as number, runs };
}

/** Runs a command to its end; rejects with its output when it fails. Returns wall seconds. */
export function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const secs = Number(process.hrtime.bigint() - start) / 1e9;
      if (code === 0) resolve(secs);
      else reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')} … exited ${code}: ${err.slice(-500)}`));
    });
  });
}

/** Alternates Petrel and the reference, `n` times each, so both see the same machine state. */
export async function compare(n: number, petrel: () => Promise<number>, reference?: () => Promise<number>): Promise<{ petrel: number[]; reference: number[] }> {
  const out = { petrel: [] as number[], reference: [] as number[] };
  for (let i = 0; i < n; i++) {
    out.petrel.push(await petrel());
    if (reference) out.reference.push(await reference());
  }
  return out;
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(3));

export function printTable(results: CaseResult[], log: (line: string) => void = console.log): void {
  log('');
  log('| case | petrel median (min–max) | reference | reference median (min–max) | ratio | target |');
  log('|---|---|---|---|---|---|');
  for (const r of results) {
    const p = `${fmt(r.petrel.median)} ${r.unit} (${fmt(r.petrel.min)}–${fmt(r.petrel.max)})`;
    const ref = r.reference ? `${fmt(r.reference.stats.median)} ${r.unit} (${fmt(r.reference.stats.min)}–${fmt(r.reference.stats.max)})` : '–';
    const ratio = r.ratio === undefined ? '–' : `${r.ratio.toFixed(2)}×`;
    const target = r.target ? `${r.target} ${r.met ? 'met' : 'MISSED'}` : '–';
    log(`| ${r.name} | ${p} | ${r.reference?.tool ?? '–'} | ${ref} | ${ratio} | ${target} |`);
  }
}
