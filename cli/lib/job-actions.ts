import type { JobView, RunState } from '../../src/api/index.js';
import { KIND_SIDES } from '../../src/domain.js';
import { PetrelError } from '../../src/errors.js';
import { withAgentClient } from './agent-process.js';
import { followJob, reportOutcome, type JobSource } from './follow.js';
import { EXIT, formatBytes, print, printJson } from './output.js';

type Opts = { json?: boolean; quiet?: boolean; all?: boolean; state?: RunState; limit?: string };

function summary(j: JobView): string {
  const c = j.counts;
  const total = j.bytesTotal === null ? '?' : formatBytes(j.bytesTotal);
  return `${j.id}  ${j.kind.padEnd(4)} ${j.state.padEnd(9)} ${c.succeeded}/${c.total} done${c.failed ? `, ${c.failed} failed` : ''}  ${formatBytes(j.bytesDone)}/${total}  ${j.createdAt}`;
}

export async function list(_: unknown, opts: Opts): Promise<number> {
  const limit = Number(opts.limit ?? 50);
  if (!Number.isInteger(limit) || limit < 1) throw new PetrelError('USAGE', '--limit must be a positive whole number');
  const res = await withAgentClient((c) => c.list({ state: opts.state, limit }));
  if (opts.json) printJson(res);
  else if (!res.jobs.length) print('no jobs');
  else for (const j of res.jobs) print(summary(j));
  return EXIT.ok;
}

export async function status(id: string, opts: Opts): Promise<number> {
  const detail = await withAgentClient(async (c) => {
    const first = await c.job(id, { transferLimit: opts.all ? 10_000 : 20 });
    // --all: every page of transfers, not only the first.
    for (let next = first.nextTransfers; opts.all && next; ) {
      const page = await c.job(id, { transferLimit: 10_000, transferCursor: next });
      first.transfers.push(...page.transfers);
      next = page.nextTransfers;
      if (!next) delete first.nextTransfers;
    }
    return first;
  });
  if (opts.json) {
    printJson(detail);
    return EXIT.ok;
  }
  print(summary(detail));
  if (detail.waiting) print(`  waiting: ${detail.waiting.reason}${detail.waiting.hint ? ` (${detail.waiting.hint})` : ''}`);
  if (detail.error) print(`  error: ${detail.error.message}`);
  if (detail.listing) print(`  listing: ${detail.listing.directories} director${detail.listing.directories === 1 ? 'y' : 'ies'} listed, ${detail.listing.files} file${detail.listing.files === 1 ? '' : 's'} found so far`);
  if (detail.recalls) print(`  tape: ${detail.recalls.requests} stage request${detail.recalls.requests === 1 ? '' : 's'}${detail.recalls.lastPolledAt ? `, last polled ${detail.recalls.lastPolledAt}` : ''}`);
  for (const t of detail.transfers) {
    const bytes = `${formatBytes(t.bytesDone)}/${t.bytesTotal === null ? '?' : formatBytes(t.bytesTotal)}`;
    const where = t.tape === 'on-tape' ? ' (waiting for tape)' : t.tape === 'on-disk' ? ' (on disk)' : '';
    const what = KIND_SIDES[detail.kind].destination ? `${t.source} → ${t.destination}` : t.source;
    print(`  #${t.index} ${t.state.padEnd(9)}${where} ${bytes}${t.state === 'running' ? ` ${formatBytes(t.rate)}/s` : ''}  ${what}`);
    if (t.servedBy) print(`      served by ${t.servedBy}`);
    for (const a of t.serverAttempts ?? []) print(`      tried first ${a.server}: ${a.error}`);
    if (t.error) print(`      ${t.state === 'failed' ? 'error' : 'last error'}: ${t.error.message}${t.attempts > 1 ? ` (attempt ${t.attempts})` : ''}`);
  }
  if (detail.nextTransfers) print(`  … more transfers: \`petrel job status ${id} --all\``);
  return EXIT.ok;
}

export async function wait(id: string, opts: Opts): Promise<number> {
  return withAgentClient(async (c) => {
    const source: JobSource = { events: (jobId, signal) => c.events(jobId, signal, { transfers: 'false' }), detail: (jobId, q) => c.job(jobId, q) };
    const final = await followJob(source, id, { quiet: Boolean(opts.quiet || opts.json) });
    return reportOutcome(source, final, Boolean(opts.json));
  });
}

export async function cancel(id: string, opts: Opts): Promise<number> {
  const job = await withAgentClient((c) => c.cancel(id));
  if (opts.json) printJson(job);
  else print(`job ${job.id} ${job.state}`);
  return EXIT.ok;
}

export async function retry(id: string, opts: Opts): Promise<number> {
  const job = await withAgentClient((c) => c.retry(id));
  if (opts.json) printJson(job);
  else {
    const n = job.counts.queued + job.counts.running + job.counts.waiting;
    print(`job ${job.id} re-queued: ${n} transfer${n === 1 ? '' : 's'} to run${job.state === 'listing' ? ', and its trees are listed again' : ''}`);
  }
  return EXIT.ok;
}
