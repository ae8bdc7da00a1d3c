// The queue cases of `npm run bench`: one job of 100,000 transfers submitted over the socket,
// `job status` latency while they are queued and a few run, and the agent's peak memory.
// The running transfers read from a slow storage stand-in (below), so they stay running for the
// whole measurement; nothing else about the agent is stubbed.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createAgentClient } from '../src/api/index.js';
import type { Testbed } from '../test/testbed/index.js';
import { stats, type Stats } from './harness.js';
import { rssMB } from './memory.js';

export interface QueueMeasurements {
  transfers: number;
  submitSeconds: number;
  statusMs: Stats & { p99: number };
  /** The agent's resident memory before the job came, its peak, and where it settled with the job queued. */
  idleRssMB: number;
  peakRssMB: number;
  queuedRssMB: number;
  running: number;
}

/** An HTTPS storage that answers every GET with a large body trickled one byte a second. */
async function startSlowStorage(tb: Testbed): Promise<{ url: string; close(): Promise<void> }> {
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer({ cert: readFileSync(tb.tls.certFile), key: readFileSync(tb.tls.keyFile) }, (req, res) => {
    res.writeHead(200, { 'Content-Length': String(1 << 30) });
    const t = setInterval(() => res.write('x'), 1000);
    timers.add(t);
    req.socket.on('close', () => {
      clearInterval(t);
      timers.delete(t);
    });
  });
  await new Promise<void>((r) => server.listen(0, 'localhost', r));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const t of timers) clearInterval(t);
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/**
 * Needs a running agent (socket `socket`) whose config allows `running` transfers per host;
 * submits one get job of `n` transfers from the slow storage and measures, then cancels it.
 */
export async function measureQueue(tb: Testbed, opts: { socket: string; workDir: string; n: number; running: number; statusCalls: number }): Promise<QueueMeasurements> {
  const storage = await startSlowStorage(tb);
  const client = createAgentClient({ socket: opts.socket, timeoutMs: 120_000 });
  try {
    const { pid } = await client.health();
    const idleRssMB = await rssMB(pid, 'VmRSS');
    const transfers = Array.from({ length: opts.n }, (_, i) => ({ source: `${storage.url}/q/f${i}`, destination: join(opts.workDir, 'queue', `f${i}`) }));
    const t0 = process.hrtime.bigint();
    const { id } = await client.submit({ kind: 'get', transfers, checksum: 'none' });
    const submitSeconds = Number(process.hrtime.bigint() - t0) / 1e9;

    // Status is measured once the allowed transfers run (the rest stay queued behind the limit).
    for (let i = 0; i < 100; i++) {
      const job = await client.job(id, { transferLimit: 1 });
      if (job.counts.running >= opts.running) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const latencies: number[] = [];
    let running = 0;
    for (let i = 0; i < opts.statusCalls; i++) {
      const s = process.hrtime.bigint();
      // What `petrel job status` asks for.
      const job = await client.job(id, { transferLimit: 20 });
      latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
      running = job.counts.running;
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const statusMs = { ...stats(latencies), p99: percentile(sorted, 99) };
    const queuedRssMB = await rssMB(pid, 'VmRSS');
    const peakRssMB = await rssMB(pid, 'VmHWM');
    await client.cancel(id);
    return { transfers: opts.n, submitSeconds, statusMs, idleRssMB, peakRssMB, queuedRssMB, running };
  } finally {
    await client.close();
    await storage.close();
  }
}
