import type { Server, ServerOptions } from 'node:http';

/**
 * Bounds on how long a client may take over its request, so idle or slow (slowloris) connections
 * to the socket do not pile up: the whole head within 10 s, the whole request (a large NDJSON job
 * included) within 2 min, 5 s idle between keep-alive requests. Checked every second.
 */
export const SOCKET_SERVER_OPTIONS: ServerOptions = {
  headersTimeout: 10_000,
  requestTimeout: 120_000,
  keepAliveTimeout: 5_000,
  connectionsCheckingInterval: 1_000,
};

/** A connection that sends no request at all is closed after this long (the head timeout starts only with its first byte). */
const FIRST_REQUEST_MS = 10_000;

export function closeSilentConnections(server: Server, firstRequestMs = FIRST_REQUEST_MS): void {
  server.on('connection', (socket) => {
    socket.setTimeout(firstRequestMs, () => socket.destroy());
  });
  // Once a request has come, Node's own timeouts (above) take over; a response may take long.
  server.on('request', (req) => req.socket.setTimeout(0));
}
