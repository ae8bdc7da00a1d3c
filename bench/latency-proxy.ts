// A TCP proxy that puts a distance between a client and a server on loopback, where `tc netem`
// is not available (this kernel has no sch_netem): every chunk waits `oneWayMs` in each
// direction, and at most `windowBytes` are unacknowledged per direction, as a TCP window bounds a
// real long link (one connection then moves at most windowBytes per round trip). TLS passes
// through untouched. A stand-in for a WAN, kept simple: no loss, no congestion control.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

function delayed(from: Socket, to: Socket, oneWayMs: number, windowBytes: number): void {
  // A chunk holds its place in the window from its arrival until its acknowledgement would be
  // back: one round trip (delivered after oneWayMs, acknowledged oneWayMs later).
  const queue: { at: number; chunk: Buffer }[] = [];
  const acks: { at: number; bytes: number }[] = [];
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  const next = (): number | undefined => {
    const times = [queue[0]?.at, acks[0]?.at].filter((t): t is number => t !== undefined);
    return times.length ? Math.min(...times) : undefined;
  };
  const drain = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length && (queue[0] as { at: number }).at <= now) {
      const { at, chunk } = queue.shift() as { at: number; chunk: Buffer };
      to.write(chunk);
      acks.push({ at: at + oneWayMs, bytes: chunk.length });
    }
    while (acks.length && (acks[0] as { at: number }).at <= now) inFlight -= (acks.shift() as { bytes: number }).bytes;
    if (inFlight < windowBytes && from.isPaused()) from.resume();
    const at = next();
    if (at !== undefined) timer = setTimeout(drain, Math.max(0, at - now));
    if (!queue.length && from.readableEnded) to.end();
  };
  from.on('data', (chunk: Buffer) => {
    queue.push({ at: performance.now() + oneWayMs, chunk });
    inFlight += chunk.length;
    if (inFlight >= windowBytes) from.pause();
    timer ??= setTimeout(drain, oneWayMs);
  });
  from.on('end', () => {
    if (!queue.length) to.end();
  });
  from.on('error', () => to.destroy());
  from.on('close', () => {
    if (!queue.length) to.destroy();
  });
}

export interface LatencyProxy {
  port: number;
  close(): Promise<void>;
}

/** Listens on a free loopback port and forwards every connection to `target` with the delay. */
export async function startLatencyProxy(target: { host: string; port: number }, rttMs: number, windowBytes: number): Promise<LatencyProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    delayed(client, upstream, rttMs / 2, windowBytes);
    delayed(upstream, client, rttMs / 2, windowBytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
