// Tiny HTTPS servers with the test bed's certificate, for what the bed's XRootD does not do
// (hostile or broken answers). Each closes when its test ends.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';
import type { TestbedInfo } from '../testbed/index.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An HTTPS server on a free port of localhost. */
export async function standIn(tb: Pick<TestbedInfo, 'tls'>, handler: Handler): Promise<{ url: string; server: Server }> {
  const server = createServer({ cert: readFileSync(tb.tls.certFile), key: readFileSync(tb.tls.keyFile) }, handler);
  await new Promise<void>((r) => server.listen(0, 'localhost', r));
  onTestFinished(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `https://localhost:${(server.address() as AddressInfo).port}`, server };
}
