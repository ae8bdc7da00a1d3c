// node dist/bench/https-floor.js get URL TOKEN_FILE CA_FILE
// node dist/bench/https-floor.js put URL TOKEN_FILE CA_FILE FILE
// node dist/bench/https-floor.js small LIST TOKEN_FILE CA_FILE DIR
// One request through the client Petrel uses (node:https; a PUT read and sent 64 KiB at a time),
// the GET's body read and thrown away. Nothing of Petrel runs: this is what Node's HTTPS stack
// alone costs on this machine, the floor under Petrel's transfers. `small` does what Petrel does
// for each file of a list, 8 at a time over one keep-alive pool, and nothing else: GET, adler32
// of the body, write and fsync a new file, HEAD for the server's adler32 (one per origin at a
// time, as Petrel asks) compared with it, rename and fsync of the directory (Petrel's helpers
// for the last two).
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { renameDurably } from '../src/durable.js';
import { createChecksummer, serverDigest } from '../src/transfer/index.js';

const [method, url, tokenFile, caFile, file] = process.argv.slice(2);
if ((method !== 'get' && method !== 'put' && method !== 'small') || !url || !tokenFile || !caFile || (method !== 'get' && !file)) {
  process.stderr.write('usage: https-floor get URL TOKEN_FILE CA_FILE | put URL TOKEN_FILE CA_FILE FILE | small LIST TOKEN_FILE CA_FILE DIR\n');
  process.exit(2);
}
const ca = readFileSync(caFile);
const authorization = `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`;

function get(): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url as string, { ca, headers: { Authorization: authorization } }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => (res.statusCode === 200 && bytes > 0 ? resolve() : reject(new Error(`GET ${url}: ${res.statusCode}, ${bytes} bytes`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function put(path: string): Promise<void> {
  const size = statSync(path).size;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url as string, { method: 'PUT', ca, headers: { Authorization: authorization, 'Content-Length': String(size) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode && res.statusCode < 300 ? resolve() : reject(new Error(`PUT ${url}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    createReadStream(path, { highWaterMark: 64 << 10 }).pipe(req);
  });
}

/** One request to its end: status, headers and the body gathered. */
function fetchWhole(agent: HttpsAgent, method: 'GET' | 'HEAD', target: string, headers: Record<string, string> = {}): Promise<{ status: number; digest: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(target, { method, agent, headers: { Authorization: authorization, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: res.headers.digest as string | undefined, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function small(list: string, dir: string): Promise<void> {
  const urls = readFileSync(list, 'utf8').split('\n').filter(Boolean);
  const agent = new HttpsAgent({ keepAlive: true, ca, maxCachedSessions: 0 });
  await mkdir(dir, { recursive: true });
  let digestTail: Promise<unknown> = Promise.resolve();
  let next = 0;
  const worker = async () => {
    while (next < urls.length) {
      const u = urls[next++] as string;
      const got = await fetchWhole(agent, 'GET', u);
      if (got.status !== 200) throw new Error(`GET ${u}: ${got.status}`);
      const sum = createChecksummer('adler32');
      sum.update(got.body);
      const dest = join(dir, u.slice(u.lastIndexOf('/') + 1));
      const fh = await open(`${dest}.part`, 'wx');
      await fh.write(got.body, 0, got.body.length, 0);
      await fh.sync();
      await fh.close();
      const head = digestTail.then(() => fetchWhole(agent, 'HEAD', u, { 'Want-Digest': 'adler32' }));
      digestTail = head.catch(() => undefined);
      const { status, digest } = await head;
      if (status !== 200 || serverDigest(digest, 'adler32') !== sum.digest()) throw new Error(`HEAD ${u}: ${status}, digest ${digest ?? 'none'}`);
      await renameDurably(`${dest}.part`, dest);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  agent.destroy();
}

try {
  await (method === 'get' ? get() : method === 'put' ? put(file as string) : small(url, file as string));
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
}
