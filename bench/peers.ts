// The other clients users compare Petrel with: davix-get and davix-put (C++, the
// HTTP library of gfal2 and FTS), xrdcp over roots:// (XRootD's own client) and rclone (Go),
// for one big file each way and for many small files. Each gets the same token and trusts the test CA its own way.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { timed } from './harness.js';

/** Debian packages of the peers: optional (a missing one's rows read n/a). */
export const PEER_TOOLS = { required: [] as string[][], optional: [['davix-get', 'davix'], ['davix-put', 'davix'], ['xrdcp', 'xrootd-client'], ['rclone', 'rclone']] };

export interface PeerSetting {
  /** `https://localhost:PORT/path` of the file; the same port speaks roots://. */
  url: string;
  token: string;
  caFile: string;
  /** `openssl rehash`ed directory with the CA. */
  caDir: string;
}

export type PeerGet = (dest: string) => Promise<number>;

/** One timed download per call, the file removed after. */
/** `streams`: also xrdcp over that many TCP connections (-S), the peer that splits a download too. */
export function peerGets(s: PeerSetting, available: (bin: string) => boolean, streams?: number): Record<string, PeerGet> {
  const u = new URL(s.url);
  const once = (cmd: string, args: (dest: string) => string[], env?: NodeJS.ProcessEnv): PeerGet => async (dest) => {
    try {
      return await timed(cmd, args(dest), env);
    } finally {
      await rm(dest, { force: true });
    }
  };
  const peers: Record<string, PeerGet> = {};
  if (available('davix-get')) {
    peers['davix-get'] = once('davix-get', (dest) => ['--capath', s.caDir, '-H', `Authorization: Bearer ${s.token}`, s.url, dest]);
  }
  if (available('xrdcp')) {
    // xrdcp takes a token only as ?authz= (BEARER_TOKEN made it exit 54 here, performance.md).
    const roots = `roots://${u.host}/${u.pathname}?authz=Bearer%20${encodeURIComponent(s.token)}`;
    peers['xrdcp roots://'] = once('xrdcp', (dest) => ['-f', '-s', roots, dest], { ...process.env, X509_CERT_DIR: s.caDir });
    if (streams !== undefined) {
      peers[`xrdcp -S ${streams} roots://`] = once('xrdcp', (dest) => ['-f', '-s', '-S', String(streams), roots, dest], { ...process.env, X509_CERT_DIR: s.caDir });
    }
  }
  if (available('rclone')) {
    peers['rclone copyurl'] = once('rclone', (dest) => ['copyurl', '--ca-cert', s.caFile, '--header', `Authorization: Bearer ${s.token}`, s.url, dest]);
  }
  return peers;
}

export type PeerRun = () => Promise<number>;

/** Uploads of `local` to `url` (a path the peer's name is added to). */
export function peerPuts(s: PeerSetting, local: string, available: (bin: string) => boolean): Record<string, PeerRun> {
  const u = new URL(s.url);
  const at = (name: string) => `${u.pathname.replace(/\/+$/, '')}/put-${name}.bin`;
  const peers: Record<string, PeerRun> = {};
  if (available('davix-put')) peers['davix-put'] = () => timed('davix-put', ['--capath', s.caDir, '-H', `Authorization: Bearer ${s.token}`, local, `${u.origin}${at('davix')}`]);
  if (available('xrdcp')) {
    peers['xrdcp roots://'] = () => timed('xrdcp', ['-f', '-s', local, `roots://${u.host}/${at('xrdcp')}?authz=Bearer%20${encodeURIComponent(s.token)}`], { ...process.env, X509_CERT_DIR: s.caDir });
  }
  if (available('rclone')) {
    // --ignore-times: else rclone skips a destination of the same size and time (every run after the first).
    peers['rclone copyto (webdav)'] = () => timed('rclone', ['copyto', '--ignore-times', '--ca-cert', s.caFile, '--webdav-url', u.origin, '--webdav-bearer-token', s.token, local, `:webdav:${at('rclone')}`]);
  }
  return peers;
}

/**
 * Many small files from the directory `url` into a fresh local directory each run, 8 at a
 * time as Petrel's bench agent runs them: xrdcp with --parallel 8 and rclone copy with
 * --transfers 8 (both in one process, as a user runs them).
 */
export function peerManyGets(s: PeerSetting, names: readonly string[], dir: () => string, available: (bin: string) => boolean, work: string): Record<string, PeerRun> {
  const u = new URL(s.url);
  const base = u.pathname.replace(/\/+$/, '');
  const peers: Record<string, PeerRun> = {};
  if (available('xrdcp')) {
    const sources = names.map((n) => `roots://${u.host}/${base}/${n}?authz=Bearer%20${encodeURIComponent(s.token)}`);
    peers['xrdcp --parallel 8'] = async () => {
      const d = dir();
      await mkdir(d, { recursive: true });
      return timed('xrdcp', ['-f', '-s', '--parallel', '8', ...sources, `${d}/`], { ...process.env, X509_CERT_DIR: s.caDir });
    };
  }
  if (available('rclone')) {
    const list = join(work, 'rclone-files.txt');
    peers['rclone copy --transfers 8'] = async () => {
      await writeFile(list, `${names.join('\n')}\n`);
      return timed('rclone', ['copy', '--ca-cert', s.caFile, '--webdav-url', u.origin, '--webdav-bearer-token', s.token, '--transfers', '8', '--files-from', list, `:webdav:${base}`, dir()]);
    };
  }
  return peers;
}
