// A TCP proxy that puts a distance between a client and a server on loopback, where `tc netem`
// is not available (this kernel has no sch_netem): every chunk waits `oneWayMs` in each
// direction, and at most `windowBytes` are in flight server → client, as a TCP window bounds a
// real long link (one connection then moves at most windowBytes per round trip). TLS passes
// through untouched. A stand-in for a WAN, kept simple: no loss, no congestion control.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

function delayed(from: Socket, to: Socket, oneWayMs: number, windowBytes: number): void {
  const queue: { at: number; chunk: Buffer }[] = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  const drain = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length && (queue[0] as { at: number }).at <= now) {
      const { chunk } = queue.shift() as { chunk: Buffer };
      queued -= chunk.length;
      to.write(chunk);
    }
    if (queued < windowBytes && from.isPaused()) from.resume();
    if (queue.length) timer = setTimeout(drain, Math.max(0, (queue[0] as { at: number }).at - now));
    else if (from.readableEnded) to.end();
  };
  from.on('data', (chunk: Buffer) => {
    queue.push({ at: performance.now() + oneWayMs, chunk });
    queued += chunk.length;
    if (queued >= windowBytes) from.pause();
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
