// The tape case of `npm run bench`: one prestage job of 10,000 files against the WLCG Tape REST
// stand-in (test/helpers/tape-server.ts, dCache dialect), each file on disk a random 0.5–3 s after
// the first stage request naming it. Counts the calls the agent makes to the tape API (stage
// requests, polls and the rest), the wall time from submit to the job's end, and the agent's CPU
// and peak memory. The reference, one stage request per file each polled on the agent's own
// schedule until its file is on disk, is counted from the same files' delays, not run.
// The stand-in runs in this process; only the agent is real.
import { setTimeout as sleep } from 'node:timers/promises';
import { createAgentClient } from '../src/api/index.js';
import { startTapeServer } from '../test/helpers/tape-server.js';
import { mintToken, type Testbed } from '../test/testbed/index.js';
import { processCpuSeconds } from './cpu.js';
import { rssMB } from './memory.js';

/** The agent's `tape` block for the case: batches as by default, polls every 0.5 s to 2 s. */
export const TAPE_CONFIG = { batchSize: 200, fillWaitMs: 2_000, maxRequestsPerEndpoint: 20, firstPollMs: 500, maxPollMs: 2_000 };

export interface TapeMeasurements {
  files: number;
  /** How the job ended (`succeeded` unless the stand-in or the agent went wrong). */
  state: string;
  stageRequests: number;
  /** Files in the largest stage request. */
  largestRequest: number;
  polls: number;
  /** Every call to the tape API: discovery, stage, poll, cancel, release, DELETE, archiveinfo. */
  tapeCalls: number;
  /** From submit to the job's end (its finishedAt). */
  wallSeconds: number;
  /** The agent's user + system CPU from submit to a second after the job's end. */
  agentCpuSeconds: number;
  /** This process's CPU meanwhile: the stand-in, and following the job. */
  standInCpuSeconds: number;
  idleRssMB: number;
  peakRssMB: number;
  /** What one stage request per file costs, each polled on the agent's schedule until on disk. */
  perFile: { stageRequests: number; polls: number };
}

/** A seeded generator (mulberry32): the same delays every run, so runs compare. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Polls one request needs for a file on disk `delayMs` after it: the first after firstPollMs, the interval doubling up to maxPollMs (the stager's rule). */
export function pollsUntil(delayMs: number, poll: { firstPollMs: number; maxPollMs: number }): number {
  let at = poll.firstPollMs;
  let interval = poll.firstPollMs;
  let polls = 1;
  while (at < delayMs) {
    interval = Math.min(poll.maxPollMs, Math.max(poll.firstPollMs, interval * 2));
    at += interval;
    polls++;
  }
  return polls;
}

/**
 * Needs a running agent (socket `socket`) whose `tape` config is TAPE_CONFIG; submits one
 * prestage job of `files` files, waits for its end (at most `timeoutMs`) and measures.
 */
export async function measureTape(tb: Testbed, opts: { socket: string; files: number; minDelayMs: number; maxDelayMs: number; timeoutMs: number }): Promise<TapeMeasurements> {
  const server = await startTapeServer(tb, { dialect: 'dcache', autoClose: false });
  const client = createAgentClient({ socket: opts.socket, timeoutMs: 120_000 });
  try {
    const random = seeded(20_260_101);
    const delays = Array.from({ length: opts.files }, () => Math.round(opts.minDelayMs + random() * (opts.maxDelayMs - opts.minDelayMs)));
    const urls = delays.map((delayMs, i) => {
      const path = `/tape/bench/f${i}`;
      server.addFile(path, { content: 16, delayMs });
      return `${server.url}${path}`;
    });
    const token = await mintToken(tb, { scope: 'storage.stage:/tape', expiresIn: 3600 });
    const { pid } = await client.health();
    const idleRssMB = await rssMB(pid, 'VmRSS');
    const cpu0 = processCpuSeconds(pid);
    const self0 = process.cpuUsage();
    const t0 = Date.now();
    const { id } = await client.submit({ kind: 'prestage', transfers: urls.map((u) => ({ source: u, destination: u })), token });
    let job = await client.job(id, { transferLimit: 1 });
    while (job.finishedAt === undefined) {
      if (Date.now() - t0 > opts.timeoutMs) {
        await client.cancel(id);
        throw new Error(`tape: the prestage job did not end in ${opts.timeoutMs / 1000} s: ${JSON.stringify(job.counts)}, ${server.stats.stageRequests} stage requests, ${server.stats.polls} polls`);
      }
      await sleep(100);
      job = await client.job(id, { transferLimit: 1 });
    }
    const wallSeconds = (Date.parse(job.finishedAt) - t0) / 1000;
    // Calls made once the job has ended (the DELETE of finished requests) are counted too.
    await sleep(1000);
    const agentCpuSeconds = processCpuSeconds(pid) - cpu0;
    const self = process.cpuUsage(self0);
    const peakRssMB = await rssMB(pid, 'VmHWM');
    const s = server.stats;
    const perFilePolls = delays.reduce((sum, d) => sum + pollsUntil(d, TAPE_CONFIG), 0);
    return {
      files: opts.files,
      state: job.state,
      stageRequests: s.stageRequests,
      largestRequest: Math.max(0, ...s.requests.map((r) => r.files.length)),
      polls: s.polls,
      tapeCalls: s.discovery + s.stageRequests + s.polls + s.cancels + s.releases + s.deletes + s.archiveinfo,
      wallSeconds,
      agentCpuSeconds,
      standInCpuSeconds: (self.user + self.system) / 1e6,
      idleRssMB,
      peakRssMB,
      perFile: { stageRequests: opts.files, polls: perFilePolls },
    };
  } finally {
    await client.close();
    await server.close();
  }
}
