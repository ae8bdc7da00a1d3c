// Token issuer of the Petrel test bed: a tiny OIDC-style HTTPS server that publishes one ES256
// public key. Plain ESM using only Node built-ins, so it runs with plain `node` as a detached
// child process (test/testbed/index.ts starts it; see testbed.md "Issuer").
//
//   node issuer-server.mjs --key KEY.jwk --cert SERVER.pem --tls-key SERVER.key --port N
//        --ready FILE [--pid-file FILE] [--watch PID --root DIR]
//
// --port 0 picks a free port; the chosen one is written to --ready as {"port":N,"url":...}.
// With --watch, the issuer is also the test bed's watchdog: once process PID is gone it kills
// every server whose pid file lies in DIR/*/xrootd.pid or DIR/*/idp.pid, removes DIR (unless
// PETREL_KEEP_TESTBED=1) and exits, so a crashed test run leaves nothing behind.
import { createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    key: { type: 'string' },
    cert: { type: 'string' },
    'tls-key': { type: 'string' },
    port: { type: 'string', default: '0' },
    ready: { type: 'string' },
    'pid-file': { type: 'string' },
    watch: { type: 'string' },
    root: { type: 'string' },
  },
  strict: true,
});
if (!args.key || !args.cert || !args['tls-key'] || !args.ready) {
  process.stderr.write('issuer-server: --key, --cert, --tls-key and --ready are required\n');
  process.exit(2);
}

const privateJwk = JSON.parse(readFileSync(args.key, 'utf8'));
const pub = createPublicKey({ key: privateJwk, format: 'jwk' }).export({ format: 'jwk' });
const jwks = JSON.stringify({
  keys: [{ kty: 'EC', crv: 'P-256', x: pub.x, y: pub.y, kid: privateJwk.kid ?? 'k1', alg: 'ES256' }],
});
const tls = { cert: readFileSync(args.cert), key: readFileSync(args['tls-key']) };

let port = Number(args.port);
let url = '';
let discovery = '';

function handler(req, res) {
  const path = (req.url ?? '/').split('?')[0];
  let body;
  if (path === '/.well-known/openid-configuration') body = discovery;
  else if (path === '/jwks.json') body = jwks;
  process.stdout.write(`${new Date().toISOString()} ${req.method} ${req.url} ${body ? 200 : 404}\n`);
  if (body === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function listen(host, p) {
  return new Promise((resolve, reject) => {
    const srv = createServer(tls, handler);
    srv.once('error', reject);
    srv.listen(p, host, () => resolve(srv));
  });
}

const v4 = await listen('127.0.0.1', port);
port = v4.address().port;
url = `https://localhost:${port}`;
discovery = JSON.stringify({ issuer: url, jwks_uri: `${url}/jwks.json` });
// "localhost" may resolve to ::1 on other hosts: answer there too when possible.
await listen('::1', port).catch(() => undefined);

if (args['pid-file']) writeFileSync(args['pid-file'], `${process.pid}\n`);
writeFileSync(`${args.ready}.tmp`, JSON.stringify({ port, url, pid: process.pid }));
renameSync(`${args.ready}.tmp`, args.ready);
process.stdout.write(`issuer ${url} ready (pid ${process.pid})\n`);

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => process.exit(0));

function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return e.code === 'EPERM';
  }
  try {
    // A zombie is gone for our purposes.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

// Servers (XRootD) and the OpenID provider (idp-server.mjs) of the bed.
const PID_FILES = ['xrootd.pid', 'idp.pid'];

if (args.watch && args.root) {
  const watched = Number(args.watch);
  const root = args.root;
  const timer = setInterval(() => {
    if (alive(watched)) return;
    clearInterval(timer);
    process.stdout.write(`watched process ${watched} is gone: cleaning up ${root}\n`);
    const pids = [];
    try {
      for (const d of readdirSync(root)) {
        for (const f of PID_FILES.map((name) => join(root, d, name))) {
          if (!existsSync(f)) continue;
          const pid = Number(readFileSync(f, 'utf8').trim());
          if (pid > 1) pids.push(pid);
        }
      }
    } catch {
      // root already gone
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    setTimeout(() => {
      if (process.env.PETREL_KEEP_TESTBED !== '1') {
        try {
          rmSync(root, { recursive: true, force: true });
        } catch {
          // best effort
        }
      }
      process.exit(0);
    }, 500);
  }, 1000);
}
