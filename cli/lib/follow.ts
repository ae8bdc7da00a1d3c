import { isFinal, type JobDetail, type JobDetailQuery, type JobEvent, type JobView } from '../../src/api/index.js';
import { EXIT, formatBytes, print, printJson } from './output.js';
import { createProgressDisplay } from './progress.js';

/** Where a job is followed from: the agent's client, or the in-process queue. */
export interface JobSource {
  /** Job and progress events; per-transfer events are not needed (nor asked for). */
  events(id: string, signal?: AbortSignal): AsyncIterable<JobEvent>;
  detail(id: string, q?: JobDetailQuery): Promise<JobDetail>;
}

/** Follows a job's events to its end, drawing progress unless quiet. Returns the final view. */
export async function followJob(src: JobSource, id: string, opts: { quiet: boolean; signal?: AbortSignal }): Promise<JobView> {
  const display = opts.quiet ? undefined : await createProgressDisplay();
  let last: JobView | undefined;
  let said: string | undefined;
  try {
    for await (const ev of src.events(id, opts.signal)) {
      if (ev.type === 'job') {
        last = ev.job;
        // A waiting job needs the user: say why once, and what to run.
        const why = ev.job.state === 'waiting' && ev.job.waiting ? `${ev.job.waiting.reason}${ev.job.waiting.hint ? `; ${ev.job.waiting.hint}` : ''}` : undefined;
        if (why && why !== said && !opts.quiet) process.stderr.write(`petrel: job ${id} is waiting: ${why}\n`);
        said = why;
        display?.job(ev.job);
        if (isFinal(ev.job.state) && ev.job.finishedAt) break;
      } else if (ev.type === 'progress') {
        display?.progress(ev.progress);
      }
    }
  } finally {
    display?.stop();
  }
  // The stream can end early (agent stopped): the job's own record says where it stands.
  if (!last || !last.finishedAt) last = await src.detail(id, { transferLimit: 1 });
  return last;
}

const SHOW_FAILED = 20;

/** Prints how a finished job went (which transfers failed, and why) and returns the exit code. */
export async function reportOutcome(src: JobSource, job: JobView, json: boolean): Promise<number> {
  const failed = job.counts.failed > 0 ? await src.detail(job.id, { transferState: 'failed', transferLimit: SHOW_FAILED }) : undefined;
  const code = job.state === 'succeeded' ? EXIT.ok : EXIT.failed;
  if (json) {
    printJson({ ...job, ...(failed ? { failedTransfers: failed.transfers } : {}) });
    return code;
  }
  const { counts } = job;
  const skipped = counts.skipped ? `, ${counts.skipped} skipped (already there)` : '';
  if (job.state === 'succeeded') {
    print(`job ${job.id} succeeded: ${counts.succeeded} transfer${counts.succeeded === 1 ? '' : 's'}, ${formatBytes(job.bytesDone)}${skipped}`);
  } else if (job.state === 'cancelled') {
    print(`job ${job.id} cancelled: ${counts.succeeded} of ${counts.total} transfers had succeeded`);
  } else if (job.state === 'failed') {
    print(`job ${job.id} failed: ${counts.succeeded} of ${counts.total} transfers succeeded, ${counts.failed} failed${skipped}`);
    // No transfer failed: the job itself did (a -r job's listing).
    if (counts.failed === 0 && job.error) {
      print(`  ${job.error.message}`);
      if (job.error.hint) print(`    hint: ${job.error.hint}`);
    }
    for (const t of failed?.transfers ?? []) {
      print(`  ${t.source} → ${t.destination}`);
      print(`    ${t.error?.message ?? 'failed'}`);
      if (t.error?.hint) print(`    hint: ${t.error.hint}`);
    }
    if (counts.failed > SHOW_FAILED) print(`  … and ${counts.failed - SHOW_FAILED} more: \`petrel job status ${job.id} --json\``);
    print(`  retry the failed ones with \`petrel job retry ${job.id}\``);
  } else {
    print(`job ${job.id} is ${job.state}`);
  }
  return code;
}
