// The other clients users compare Petrel with, for a download of one file: davix-get (C++, the
// HTTP library of gfal2 and FTS), xrdcp over roots:// (XRootD's own client) and rclone copyurl
// (Go). Each gets the same token, trusts the test CA its own way, and writes to a local file.
import { rm } from 'node:fs/promises';
import { timed } from './harness.js';

/** Debian packages of the peers: optional (a missing one's rows read n/a). */
export const PEER_TOOLS = { required: [] as string[][], optional: [['davix-get', 'davix'], ['xrdcp', 'xrootd-client'], ['rclone', 'rclone']] };

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
export function peerGets(s: PeerSetting, available: (bin: string) => boolean): Record<string, PeerGet> {
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
  }
  if (available('rclone')) {
    peers['rclone copyurl'] = once('rclone', (dest) => ['copyurl', '--ca-cert', s.caFile, '--header', `Authorization: Bearer ${s.token}`, s.url, dest]);
  }
  return peers;
}
