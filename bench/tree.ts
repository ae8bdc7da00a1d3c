// The tree case of `npm run bench`: a `get -r` of a tree of 100 directories × 1,000 files listed
// by the agent (PROPFIND Depth 1 per directory, each file stored as a queued transfer as it is
// read), against `rclone lsf -R --files-only` of the same tree. The storage is a stand-in in this
// process (XRootD would need 100,000 files made on disk first): it answers PROPFIND as XRootD
// does, and holds every GET unanswered, so the agent's few transfer slots stay busy and what is
// measured is the listing. The job is cancelled once listed, and the cancel is timed too.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAgentClient } from '../src/api/index.js';
import type { TestbedInfo } from '../test/testbed/index.js';
import { processCpuSeconds } from './cpu.js';
import { GNU_TIME } from './listing.js';
import { rssMB } from './memory.js';

export interface TreeServer {
  url: string;
  /** PROPFINDs answered so far. */
  listings(): number;
  close(): Promise<void>;
}

const entry = (href: string, size: number | null) =>
  `<D:response><D:href>${href}</D:href><D:propstat><D:prop>${size === null ? '<lp1:resourcetype><D:collection/></lp1:resourcetype>' : `<lp1:resourcetype/><lp1:getcontentlength>${size}</lp1:getcontentlength>`}<lp1:getlastmodified>Thu, 03 Dec 2026 10:00:00 GMT</lp1:getlastmodified></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`;

/** `/tree/dNNN/fNNNN`, `dirs` directories of `perDir` files of 1 KiB each. */
export async function startTreeServer(tb: Pick<TestbedInfo, 'tls'>, shape: { dirs: number; perDir: number }): Promise<TreeServer> {
  let listings = 0;
  const dirName = (i: number) => `d${String(i).padStart(3, '0')}`;
  const fileName = (i: number) => `f${String(i).padStart(4, '0')}`;
  const server: Server = createServer({ cert: readFileSync(tb.tls.certFile), key: readFileSync(tb.tls.keyFile) }, (req, res) => {
    const path = new URL(req.url ?? '/', 'https://x').pathname.replace(/\/+$/, '');
    if (req.method !== 'PROPFIND') return; // a GET is held: the listing is what is measured
    listings++;
    const depth1 = req.headers.depth === '1';
    res.writeHead(207, { 'Content-Type': 'text/xml; charset="utf-8"' });
    res.write('<?xml version="1.0" encoding="utf-8"?><D:multistatus xmlns:D="DAV:" xmlns:lp1="DAV:">');
    res.write(entry(`${path}/`, null));
    if (depth1 && path === '/tree') for (let i = 0; i < shape.dirs; i++) res.write(entry(`/tree/${dirName(i)}/`, null));
    else if (depth1 && /^\/tree\/d\d{3}$/.test(path)) {
      // Written in chunks of 100 entries, as a server streams a large collection.
      for (let i = 0; i < shape.perDir; i += 100) {
        let chunk = '';
        for (let j = i; j < Math.min(i + 100, shape.perDir); j++) chunk += entry(`${path}/${fileName(j)}`, 1024);
        res.write(chunk);
      }
    }
    res.end('</D:multistatus>');
  });
  await new Promise<void>((r) => server.listen(0, 'localhost', r));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    listings: () => listings,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface TreeListing {
  files: number;
  /** Submit to the job's leaving `listing`: every file stored as a queued transfer. */
  listSeconds: number;
  agentCpuSeconds: number;
  idleRssMB: number;
  peakRssMB: number;
  /** The cancel of the listed job (100,000 queued transfers), as the API answers it. */
  cancelSeconds: number;
}

/** One `get -r` of the stand-in's tree through the agent at `socket`, to the end of its listing. */
export async function measureTreeListing(opts: { socket: string; url: string; files: number; destination: string }): Promise<TreeListing> {
  const client = createAgentClient({ socket: opts.socket, timeoutMs: 120_000 });
  try {
    const { pid } = await client.health();
    const idleRssMB = await rssMB(pid, 'VmRSS');
    const cpu0 = processCpuSeconds(pid);
    const t0 = performance.now();
    const { id } = await client.submit({ kind: 'get', recursive: true, checksum: 'none', transfers: [{ source: `${opts.url}/tree/`, destination: opts.destination }] });
    let job = await client.job(id, { transferLimit: 1 });
    while (job.state === 'listing') {
      await sleep(50);
      job = await client.job(id, { transferLimit: 1 });
    }
    const listSeconds = (performance.now() - t0) / 1000;
    const agentCpuSeconds = processCpuSeconds(pid) - cpu0;
    const peakRssMB = await rssMB(pid, 'VmHWM');
    if (job.counts.total !== opts.files) throw new Error(`tree: the job holds ${job.counts.total} transfers, not ${opts.files}: ${JSON.stringify(job.error ?? job.state)}`);
    const c0 = performance.now();
    await client.cancel(id);
    const cancelSeconds = (performance.now() - c0) / 1000;
    return { files: job.counts.total, listSeconds, agentCpuSeconds, idleRssMB, peakRssMB, cancelSeconds };
  } finally {
    await client.close();
  }
}

/** `rclone lsf -R --files-only` of the same tree: wall seconds and peak RSS; rejects unless it lists `files` names. */
export async function rcloneTreeListing(opts: { url: string; caFile: string; files: number; workDir: string }): Promise<{ seconds: number; rssMB: number }> {
  const out = join(opts.workDir, 'tree-rclone.out');
  const rssFile = join(opts.workDir, 'tree-rclone.rss');
  const env = { ...process.env, RCLONE_CONFIG_TREE_TYPE: 'webdav', RCLONE_CONFIG_TREE_URL: `${opts.url}/tree/`, RCLONE_CONFIG_TREE_VENDOR: 'other' };
  const fd = openSync(out, 'w');
  const seconds = await new Promise<number>((resolve, reject) => {
    const start = performance.now();
    const child = spawn(GNU_TIME, ['-f', '%M', '-o', rssFile, 'rclone', 'lsf', '-R', '--files-only', '--config', '', '--ca-cert', opts.caFile, 'tree:'], { env, stdio: ['ignore', fd, 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve((performance.now() - start) / 1000) : reject(new Error(`rclone lsf -R exited ${code}: ${err.trim().slice(-500)}`))));
  }).finally(() => closeSync(fd));
  const names = (await readFile(out, 'utf8')).split('\n').filter((l) => /^d\d{3}\/f\d{4}$/.test(l));
  await rm(out, { force: true });
  if (new Set(names).size !== opts.files) throw new Error(`rclone lsf -R listed ${new Set(names).size} of ${opts.files} files`);
  return { seconds, rssMB: Number((await readFile(rssFile, 'utf8')).trim().split('\n').at(-1)) / 1024 };
}
