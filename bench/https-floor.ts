// node dist/bench/https-floor.js URL TOKEN_FILE CA_FILE: one GET through undici (the client
// Petrel's downloads use), the body read and thrown away. Nothing of Petrel runs: this is what
// Node's HTTPS stack alone costs on this machine, the floor under any download Petrel makes.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';

const [url, tokenFile, caFile] = process.argv.slice(2);
if (!url || !tokenFile || !caFile) {
  process.stderr.write('usage: https-floor URL TOKEN_FILE CA_FILE\n');
  process.exit(2);
}
const dispatcher = new Agent({ connect: { ca: readFileSync(caFile) } });
const res = await request(url, { dispatcher, headers: { Authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` } });
let bytes = 0;
for await (const chunk of res.body) bytes += (chunk as Buffer).length;
await dispatcher.close();
if (res.statusCode !== 200 || bytes === 0) {
  process.stderr.write(`GET ${url}: ${res.statusCode}, ${bytes} bytes\n`);
  process.exit(1);
}
