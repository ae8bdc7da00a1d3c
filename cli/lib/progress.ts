import type { JobView, ProgressEvent } from '../../src/api/index.js';
import { formatBytes } from './output.js';

export interface ProgressDisplay {
  job(view: JobView): void;
  progress(p: ProgressEvent): void;
  stop(): void;
}

const PLAIN_EVERY_MS = 2_000;

function line(view: JobView, p?: ProgressEvent): string {
  const done = view.counts.succeeded + view.counts.failed + view.counts.cancelled + view.counts.skipped;
  const bytes = p ?? view;
  const total = bytes.bytesTotal === null ? '?' : formatBytes(bytes.bytesTotal);
  return `job ${view.id} ${view.state}: ${done}/${view.counts.total} transfers, ${formatBytes(bytes.bytesDone)} of ${total}, ${formatBytes(bytes.rate)}/s`;
}

/**
 * A progress bar on a terminal; elsewhere a plain line every few seconds (logs, CI). The bar's
 * library is loaded only for a terminal: every command that waits would pay 10 ms for it.
 */
export async function createProgressDisplay(stream: NodeJS.WriteStream = process.stderr): Promise<ProgressDisplay> {
  let last: JobView | undefined;
  if (stream.isTTY) {
    const { default: cliProgress } = await import('cli-progress');
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: ' {bar} {percentage}% | {done}/{count} files | {bytes} | {speed}/s',
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    const update = (view: JobView, bytesDone: number, bytesTotal: number | null, rate: number) => {
      const payload = {
        done: view.counts.succeeded + view.counts.failed + view.counts.cancelled + view.counts.skipped,
        count: view.counts.total,
        bytes: `${formatBytes(bytesDone)}/${bytesTotal === null ? '?' : formatBytes(bytesTotal)}`,
        speed: formatBytes(rate),
      };
      const total = Math.max(bytesTotal ?? bytesDone, 1);
      if (!started) {
        bar.start(total, bytesDone, payload);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(bytesDone, payload);
      }
    };
    return {
      job(view) {
        last = view;
        update(view, view.bytesDone, view.bytesTotal, view.rate);
      },
      progress(p) {
        if (last) update(last, p.bytesDone, p.bytesTotal, p.rate);
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let lastAt = 0;
  const maybe = (text: string, force = false) => {
    const now = Date.now();
    if (!force && now - lastAt < PLAIN_EVERY_MS) return;
    lastAt = now;
    stream.write(`petrel: ${text}\n`);
  };
  return {
    job(view) {
      const changed = view.state !== last?.state;
      last = view;
      maybe(line(view), changed);
    },
    progress(p) {
      if (last) maybe(line(last, p));
    },
    stop() {},
  };
}
