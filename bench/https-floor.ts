// node dist/bench/https-floor.js get URL TOKEN_FILE CA_FILE
// node dist/bench/https-floor.js put URL TOKEN_FILE CA_FILE FILE
// One request through the client Petrel uses (node:https; a PUT read and sent 64 KiB at a time),
// the GET's body read and thrown away. Nothing of Petrel runs: this is what Node's HTTPS stack
// alone costs on this machine, the floor under Petrel's transfers.
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';

const [method, url, tokenFile, caFile, file] = process.argv.slice(2);
if ((method !== 'get' && method !== 'put') || !url || !tokenFile || !caFile || (method === 'put' && !file)) {
  process.stderr.write('usage: https-floor get URL TOKEN_FILE CA_FILE | put URL TOKEN_FILE CA_FILE FILE\n');
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

try {
  await (method === 'get' ? get() : put(file as string));
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
}
