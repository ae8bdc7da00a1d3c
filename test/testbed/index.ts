// The Petrel test bed: a private CA, an HTTPS token issuer, an OpenID provider (oidc-provider:
// device flow, refresh, token exchange; idp-server.mjs) and XRootD servers (HTTPS + WebDAV +
// HTTP-TPC + SciTokens) that trust both issuers, all on localhost with ports picked at run time.
// Facts and gotchas: /work/shared/docs/testbed.md.
//
// Everything is process-independent. State lives on disk under `root` (pid files, a start
// script per server, the issuer's private key as a JWK file), and `TestbedInfo` is plain JSON,
// so a vitest worker that got it through `inject('testbed')` can mint tokens and stop, restart
// or add servers from its own process.
//
//   import { inject, it } from 'vitest';
//   import { mintToken, writeDataFile, startXrootd, stopServer, restartServer } from '../testbed/index.js';
//   const tb = inject('testbed');                      // provided by global-setup.ts
//   const token = await mintToken(tb, { scope: 'storage.read:/' });
//   await writeDataFile(tb.servers.a, '/in/x.bin', 1 << 20);    // → GET ${tb.servers.a.url}/in/x.bin
//   const s = await startXrootd(tb, 'kill1');          // own server for tests that stop servers
//   await approveDevice(tb, userCode);                 // approve a device flow at the IdP (idp-client.ts)
//
// Servers a and b are shared by all test files running in parallel: do not stop them; use
// startXrootd for that. XRootD 5.5.3 matches request header names case-sensitively (testbed.md),
// including `Content-Length`, which undici always sends in lower case: a PUT with a Buffer body
// then stores an EMPTY file (200 ":-)"); send the body as a stream (chunked) instead.
import { spawn, execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, open, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export { approveDevice, idpStats, resetIdpStats, setIdpConfig } from './idp-client.js';
export type { ApproveOptions, IdpConfig, IdpStats, IdpStatsEntry } from './idp-client.js';

export interface XrootdServer {
  name: string;
  port: number;
  /** `https://localhost:PORT` (the same port also speaks root://). */
  url: string;
  /** URL path `/foo` is the file `${dataDir}/foo`. */
  dataDir: string;
  /** Holds the server's pid while it runs (written by `startScript`, removed by `stopServer`). */
  pidFile: string;
  logFile: string;
  /** bash script that re-runs the server exactly, in the foreground (it execs: `$$` is the server). */
  startScript: string;
  /** The account the server runs as; files in `dataDir` must stay writable by it. */
  uid: number;
  gid: number;
}

export interface TestbedInfo {
  root: string;
  /** PEM of the test CA (give it to clients, e.g. PETREL_CA_FILE). */
  caFile: string;
  /** `openssl rehash`ed directory with the CA (davix `--capath`, `X509_CERT_DIR`). */
  caDir: string;
  /** Certificate (SAN DNS:localhost, IP:127.0.0.1, IP:::1) and key used by every test bed server. */
  tls: { certFile: string; keyFile: string };
  issuer: { url: string; keyFile: string; pidFile: string; logFile: string };
  /** The OpenID provider (issuer URL `url`); it signs with the issuer's key (kid k1). */
  idp: IdpInfo;
  servers: { a: XrootdServer; b: XrootdServer };
  /** An audience every test bed server accepts (each also accepts its own `url`). */
  audience: string;
  /** `root`: servers run as an unprivileged user; `userns`: we are not root, servers run as us. */
  mode: 'root' | 'userns';
}

export interface IdpInfo {
  /** Issuer identifier, `https://localhost:PORT`; discovery at `${url}/.well-known/openid-configuration`. */
  url: string;
  port: number;
  pidFile: string;
  logFile: string;
  /** Clients, grants, refresh tokens, run-time config and statistics; survives restarts. */
  stateFile: string;
}

export type Testbed = TestbedInfo & { stop(): Promise<void> };

export interface TokenClaims {
  scope: string;
  /** Default `tb.audience`; `null` omits the claim. */
  aud?: string | string[] | null;
  /** Seconds from now until `exp`; default 600; `<= 0` makes an expired token. */
  expiresIn?: number;
  /** Absolute `nbf` (Unix seconds); default `iat`. */
  nbf?: number;
  sub?: string;
  /** Default `tb.issuer.url`. */
  iss?: string;
  /** Further claims, merged last (may override the ones above). */
  extra?: Record<string, unknown>;
  /** Spoil the signature (for refusal tests). */
  badSignature?: boolean;
}

const AUDIENCE = 'petrel-testbed';
const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,15}$/;

// ---------------------------------------------------------------------------------------------
// small helpers

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else res(stdout);
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Bash single-quoting. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** writeFile with an exact mode (independent of the umask, also for existing files). */
async function writeFileMode(file: string, data: string | Buffer, mode: number): Promise<void> {
  await writeFile(file, data, { mode });
  await chmod(file, mode);
}

/** mkdir with an exact mode (independent of the umask). */
async function mkdirMode(dir: string, mode: number): Promise<void> {
  await mkdir(dir, { mode });
  await chmod(dir, mode);
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** True while `pid` runs; a zombie counts as gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A port free on loopback right now (bind 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

/** HEAD `url`; resolves with the HTTP status (any status means the server answers). */
function httpsStatus(url: string, ca: Buffer, timeoutMs = 2000): Promise<number> {
  return new Promise((res, rej) => {
    const req = httpsRequest(url, { method: 'HEAD', ca, agent: false, timeout: timeoutMs }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

/**
 * Whether process `pid` holds a listening TCP socket on `port` (from /proc); undefined when that
 * cannot be told. Guards against taking another process's answer on the port for our server's.
 */
async function listensOn(pid: number, port: number): Promise<boolean | undefined> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT, st 0A = LISTEN, inode is field 9
      if (f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A' && f[9]) inodes.add(f[9]);
    }
  }
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`));
      if (m?.[1] && inodes.has(m[1])) return true;
    } catch {
      // fd closed meanwhile
    }
  }
  return false;
}

function findScript(name: string): string {
  const candidates = [
    `./${name}`, // test/testbed/index.ts (vitest, tsx)
    `../../../test/testbed/${name}`, // dist/test/testbed/index.js
  ].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`testbed: ${name} not found (looked at ${candidates.join(', ')})`);
  return found;
}

function spawnDetached(cmd: string, args: string[]): number {
  const child = spawn(cmd, args, { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
  if (child.pid === undefined) throw new Error(`testbed: could not start ${cmd}`);
  return child.pid;
}

// ---------------------------------------------------------------------------------------------
// accounts

interface Account {
  user: string;
  uid: number;
  gid: number;
}

async function lookupUser(user: string): Promise<Account | undefined> {
  try {
    const line = (await run('getent', ['passwd', user])).trim();
    const f = line.split(':');
    return { user, uid: Number(f[2]), gid: Number(f[3]) };
  } catch {
    return undefined;
  }
}

/** Root: PETREL_TESTBED_USER, else the package's `xrootd` user, else `petrel-xrd` (created). */
async function serverAccount(): Promise<Account> {
  if (!isRoot()) {
    const u = userInfo();
    return { user: u.username, uid: u.uid, gid: u.gid };
  }
  const wanted = process.env.PETREL_TESTBED_USER;
  if (wanted) {
    const a = await lookupUser(wanted);
    if (!a) throw new Error(`testbed: PETREL_TESTBED_USER=${wanted} does not exist`);
    return a;
  }
  const a = (await lookupUser('xrootd')) ?? (await lookupUser('petrel-xrd'));
  if (a) return a;
  try {
    await run('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent',
      '--shell', '/usr/sbin/nologin', 'petrel-xrd']);
  } catch (e) {
    // a parallel run may have created it
    if (!(await lookupUser('petrel-xrd'))) throw e;
  }
  const created = await lookupUser('petrel-xrd');
  if (!created) throw new Error('testbed: could not create user petrel-xrd');
  return created;
}

async function checkUserns(): Promise<void> {
  try {
    await run('unshare', ['--user', '--map-root-user', '--mount', 'true']);
  } catch (e) {
    throw new Error(
      'testbed: not running as root and unprivileged user namespaces are unavailable ' +
        `(${(e as Error).message.split('\n')[0]}). XRootD's SciTokens plugin only trusts ${SYSTEM_BUNDLE}, ` +
        'so the test CA must be bind-mounted over it for the servers. Run the tests as root (e.g. sudo), ' +
        'or enable user namespaces (sysctl kernel.unprivileged_userns_clone=1, ' +
        'kernel.apparmor_restrict_unprivileged_userns=0).',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// PKI and issuer key

async function makePki(pki: string, acct: Account): Promise<void> {
  // Exact modes throughout: the server user must read certificates and the bundle whatever
  // the caller's umask.
  await mkdirMode(pki, 0o755);
  await mkdirMode(join(pki, 'cadir'), 0o755);
  const ca = join(pki, 'ca.pem');
  const caKey = join(pki, 'ca.key');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', caKey, '-out', ca, '-days', '30', '-sha256',
    '-subj', '/O=Petrel test bed/CN=Petrel test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash']);
  const csr = join(pki, 'server.csr');
  const key = join(pki, 'server.key');
  await run('openssl', ['req', '-new', ...ec, '-keyout', key, '-out', csr, '-subj', '/O=Petrel test bed/CN=localhost']);
  const ext = join(pki, 'server.ext');
  await writeFile(ext, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth,clientAuth',
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid,issuer',
    '',
  ].join('\n'));
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-out', join(pki, 'server.pem'),
    '-days', '30', '-sha256', '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-extfile', ext]);
  await chmod(ca, 0o644);
  await chmod(join(pki, 'server.pem'), 0o644);
  await copyFile(ca, join(pki, 'cadir', 'ca.pem'));
  await chmod(join(pki, 'cadir', 'ca.pem'), 0o644);
  await run('openssl', ['rehash', join(pki, 'cadir')]);
  // What scitokens-cpp will see as the system bundle inside the servers' mount namespaces.
  const system = existsSync(SYSTEM_BUNDLE) ? await readFile(SYSTEM_BUNDLE, 'utf8') : '';
  await writeFileMode(join(pki, 'bundle.crt'),
    `${system}${system.endsWith('\n') || !system ? '' : '\n'}${await readFile(ca, 'utf8')}`, 0o644);
  await chmod(caKey, 0o600);
  await chmod(key, 0o400);
  if (isRoot()) await chown(key, acct.uid, acct.gid);
}

async function makeIssuerKey(file: string): Promise<void> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' };
  await writeFileMode(file, `${JSON.stringify(jwk)}\n`, 0o600);
}

async function startIssuer(root: string, tls: TestbedInfo['tls']): Promise<TestbedInfo['issuer']> {
  const dir = join(root, 'issuer');
  await mkdirMode(dir, 0o755);
  const keyFile = join(dir, 'key.jwk');
  const pidFile = join(dir, 'issuer.pid');
  const logFile = join(dir, 'issuer.log');
  const ready = join(dir, 'ready.json');
  await makeIssuerKey(keyFile);
  const args = [findScript('issuer-server.mjs'), '--key', keyFile, '--cert', tls.certFile, '--tls-key', tls.keyFile,
    '--port', '0', '--ready', ready, '--pid-file', pidFile, '--watch', String(process.pid), '--root', root];
  // The log is opened by bash so that the node child is fully detached from us.
  const pid = spawnDetached('/bin/bash', ['-c', `exec "$@" >>${shq(logFile)} 2>&1 </dev/null`, 'issuer',
    process.execPath, ...args]);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (existsSync(ready)) {
      const { url } = JSON.parse(await readFile(ready, 'utf8')) as { url: string };
      return { url, keyFile, pidFile, logFile };
    }
    if (!alive(pid)) break;
    await sleep(50);
  }
  throw new Error(`testbed: the token issuer did not start:\n${await tail(logFile)}`);
}

// ---------------------------------------------------------------------------------------------
// OpenID provider (idp-server.mjs)

type IdpBed = Pick<TestbedInfo, 'issuer' | 'tls' | 'audience'>;
type IdpFiles = Pick<IdpInfo, 'pidFile' | 'logFile' | 'stateFile'>;

/** Start idp-server.mjs detached on `port` (0: any); resolves with the port once it listens. */
async function launchIdp(bed: IdpBed, files: IdpFiles, port: number): Promise<number> {
  const ready = join(dirname(files.stateFile), 'ready.json');
  await rm(ready, { force: true });
  const args = [findScript('idp-server.mjs'), '--key', bed.issuer.keyFile, '--cert', bed.tls.certFile,
    '--tls-key', bed.tls.keyFile, '--state', files.stateFile, '--ready', ready, '--pid-file', files.pidFile,
    '--port', String(port), '--audience', bed.audience];
  const pid = spawnDetached('/bin/bash', ['-c', `exec "$@" >>${shq(files.logFile)} 2>&1 </dev/null`, 'idp',
    process.execPath, ...args]);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (existsSync(ready)) return (JSON.parse(await readFile(ready, 'utf8')) as { port: number }).port;
    if (!alive(pid)) {
      const log = await tail(files.logFile);
      throw new ServerStartError(`testbed: the OpenID provider exited while starting:\n${log}`, /EADDRINUSE/.test(log));
    }
    await sleep(50);
  }
  process.kill(pid, 'SIGKILL');
  throw new Error(`testbed: the OpenID provider did not start:\n${await tail(files.logFile)}`);
}

async function createIdp(root: string, bed: IdpBed): Promise<IdpInfo> {
  const dir = join(root, 'idp');
  await mkdirMode(dir, 0o700);
  const files = { pidFile: join(dir, 'idp.pid'), logFile: join(dir, 'idp.log'), stateFile: join(dir, 'state.json') };
  const port = await launchIdp(bed, files, 0);
  return { url: `https://localhost:${port}`, port, ...files };
}

// ---------------------------------------------------------------------------------------------
// XRootD

/** What every test bed XRootD has: its directories, one port for root:// and HTTPS, the test PKI. */
function xrootdBase(dir: string, pki: string, port: number): string {
  return `all.export /
oss.localroot ${dir}/data
all.adminpath ${dir}/admin
all.pidpath ${dir}/run
xrd.port ${port}
xrd.protocol XrdHttp:${port} libXrdHttp.so
xrd.tls ${pki}/server.pem ${pki}/server.key
xrd.tlsca certdir ${pki}/cadir`;
}

function xrootdConfig(dir: string, pki: string, port: number, tpc = true, publicRead = false): string {
  return `# Petrel test bed XRootD server (generated)
${xrootdBase(dir, pki, port)}
${tpc ? 'http.exthandler xrdtpc libXrdHttpTPC.so' : '# no third-party copy (a storage that refuses COPY)'}
http.header2cgi Authorization authz
ofs.authorize 1
${publicRead ? `# Paths in authdb may be read without a token: a request with none passes to the authdb.
acc.authdb ${dir}/authdb
ofs.authlib ++ libXrdAccSciTokens.so config=${dir}/scitokens.cfg` : `ofs.authlib libXrdAccSciTokens.so config=${dir}/scitokens.cfg`}
xrootd.chksum max 4 adler32 md5 crc32c crc32
`;
}

/**
 * An XRootD proxy cache (XCache: libXrdPss with libXrdPfc) in front of `originPort` over
 * root://, serving HTTPS without authorization of its own: a public namespace's cache.
 */
function xcacheConfig(dir: string, pki: string, port: number, originPort: number): string {
  // oss.localroot is where the cache keeps what it fetched.
  return `# Petrel test bed XCache (generated)
${xrootdBase(dir, pki, port)}
ofs.osslib libXrdPss.so
pss.cachelib libXrdPfc.so
pss.origin localhost:${originPort}
pfc.ram 1g
pfc.blocksize 1M
`;
}

function scitokensConfig(port: number, issuer: string, idp: string, user: string, publicRead = false): string {
  return `[Global]
audience = https://localhost:${port}, https://127.0.0.1:${port}, ${AUDIENCE}
${publicRead ? 'onmissing = passthrough\n' : ''}
[Issuer test]
issuer = ${issuer}
base_path = /
default_user = ${user}

[Issuer idp]
issuer = ${idp}
base_path = /
default_user = ${user}
`;
}

function startScriptText(s: XrootdServer, tb: Pick<TestbedInfo, 'root' | 'mode'>, user: string): string {
  const dir = dirname(s.dataDir);
  const bundle = join(tb.root, 'pki', 'bundle.crt');
  const envv = ['env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', `HOME=${dir}/cache`,
    `XDG_CACHE_HOME=${dir}/cache`, 'LANG=C.UTF-8', 'xrootd', '-c', `${dir}/xrootd.cfg`];
  // unshare --mount (private propagation) so the bind mount never reaches the host; every step
  // execs, so the pid written below is the server's.
  const inner = `mount --bind "$1" ${SYSTEM_BUNDLE} && shift && exec "$@"`;
  const cmd = tb.mode === 'root'
    ? ['unshare', '--mount', '/bin/sh', '-c', inner, 'sh', bundle,
      'setpriv', `--reuid=${s.uid}`, `--regid=${s.gid}`, '--clear-groups', ...envv]
    // Not root: a user namespace grants the mount; XRootD refuses to run as (namespace) root,
    // so a nested user namespace maps us back to our own uid before it starts.
    : ['unshare', '--user', '--map-root-user', '--mount', '/bin/sh', '-c', inner, 'sh', bundle,
      'unshare', '--user', `--map-user=${s.uid}`, `--map-group=${s.gid}`, ...envv];
  return `#!/bin/bash
# Petrel test bed: XRootD server "${s.name}" on ${s.url} (runs as ${user}).
# Runs in the foreground; start it detached, e.g. \`setsid bash ${s.startScript} &\`.
set -eu
exec >>${shq(s.logFile)} 2>&1 </dev/null
echo "=== $(date -Is) start (pid $$)"
echo $$ >${shq(s.pidFile)}
exec ${cmd.map(shq).join(' ')}
`;
}

async function launch(s: XrootdServer): Promise<void> {
  await rm(s.pidFile, { force: true });
  const pid = spawnDetached('/bin/bash', [s.startScript]);
  await waitReady(s, pid);
}

async function waitReady(s: XrootdServer, pid: number, timeoutMs = 30_000): Promise<void> {
  const ca = await readFile(join(dirname(dirname(s.dataDir)), 'pki', 'ca.pem'));
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive(pid)) {
      throw new ServerStartError(`testbed: XRootD "${s.name}" (port ${s.port}) exited while starting:\n${await tail(s.logFile)}`,
        /address already in use|unable to bind/i.test(await tail(s.logFile, 15)));
    }
    try {
      await httpsStatus(`${s.url}/`, ca, 1000);
      // Someone answers; make sure it is our process (else it will fail to bind and exit).
      if ((await listensOn(pid, s.port)) !== false) return;
      last = `port ${s.port} answered by another process`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`testbed: XRootD "${s.name}" did not answer on ${s.url} within ${timeoutMs} ms (${last}):\n${await tail(s.logFile)}`);
}

class ServerStartError extends Error {
  constructor(message: string, readonly portInUse: boolean) {
    super(message);
  }
}

async function createXrootd(tb: Pick<TestbedInfo, 'root' | 'mode' | 'issuer' | 'idp'>, name: string, acct: Account,
  port?: number, opts: { tpc?: boolean; publicRead?: string[]; cacheOf?: XrootdServer } = {}): Promise<XrootdServer> {
  if (!NAME_RE.test(name) || ['pki', 'issuer', 'idp'].includes(name)) throw new Error(`testbed: bad server name "${name}"`);
  const dir = join(tb.root, name);
  const pki = join(tb.root, 'pki');
  try {
    await mkdirMode(dir, 0o755);
  } catch {
    throw new Error(`testbed: server name "${name}" is taken (${dir} exists)`);
  }
  for (const sub of ['data', 'admin', 'run', 'cache']) {
    await mkdirMode(join(dir, sub), sub === 'data' ? 0o775 : 0o700);
    if (isRoot()) await chown(join(dir, sub), acct.uid, acct.gid);
  }
  if (isRoot()) {
    // Files a root test drops in the data dir stay writable by the server user.
    await run('setfacl', ['-m', `u:${acct.uid}:rwx`, '-m', `d:u:${acct.uid}:rwx`, join(dir, 'data')]).catch(() => undefined);
  }
  let attempts = port === undefined ? 5 : 1;
  for (;;) {
    const p = port ?? (await freePort());
    const s: XrootdServer = {
      name, port: p, url: `https://localhost:${p}`, dataDir: join(dir, 'data'),
      pidFile: join(dir, 'xrootd.pid'), logFile: join(dir, 'xrootd.log'), startScript: join(dir, 'start.sh'),
      uid: acct.uid, gid: acct.gid,
    };
    const publicRead = Boolean(opts.publicRead?.length);
    await writeFileMode(join(dir, 'xrootd.cfg'), opts.cacheOf ? xcacheConfig(dir, pki, p, opts.cacheOf.port) : xrootdConfig(dir, pki, p, opts.tpc ?? true, publicRead), 0o644);
    await writeFileMode(join(dir, 'scitokens.cfg'), scitokensConfig(p, tb.issuer.url, tb.idp.url, acct.user, publicRead), 0o644);
    if (publicRead) await writeFileMode(join(dir, 'authdb'), `u * ${(opts.publicRead ?? []).map((path) => `${path} lr`).join(' ')}\n`, 0o644);
    await writeFileMode(s.startScript, startScriptText(s, tb, acct.user), 0o755);
    await writeFileMode(join(dir, 'server.json'), `${JSON.stringify(s, null, 2)}\n`, 0o644);
    try {
      await launch(s);
      return s;
    } catch (e) {
      if (!(e instanceof ServerStartError && e.portInUse) || --attempts <= 0) throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// public API

/**
 * Start the whole test bed: PKI, issuer, OpenID provider, servers `a` and `b`. `stop()` kills everything and
 * removes `root` (kept when PETREL_KEEP_TESTBED=1). If the calling process dies without
 * calling stop(), the issuer notices within a second and cleans up the same way.
 */
export async function startTestbed(opts: { root?: string } = {}): Promise<Testbed> {
  for (const bin of ['xrootd', 'openssl', 'unshare', 'setpriv']) {
    if (!['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, bin)))) {
      throw new Error(`testbed: ${bin} not found; run: node test/testbed/ensure-packages.mjs`);
    }
  }
  const mode: TestbedInfo['mode'] = isRoot() ? 'root' : 'userns';
  if (mode === 'userns') await checkUserns();
  if (!existsSync(SYSTEM_BUNDLE)) throw new Error(`testbed: ${SYSTEM_BUNDLE} is missing (install ca-certificates)`);

  let root: string;
  if (opts.root) {
    root = resolve(opts.root);
    await mkdir(root, { recursive: true });
  } else {
    root = await mkdtemp('/tmp/ptb-');
  }
  await chmod(root, 0o755);
  const stop = () => stopTestbed({ root, issuer: { pidFile: join(root, 'issuer', 'issuer.pid') } });
  try {
    const acct = await serverAccount();
    const pki = join(root, 'pki');
    await makePki(pki, acct);
    const tls = { certFile: join(pki, 'server.pem'), keyFile: join(pki, 'server.key') };
    const issuer = await startIssuer(root, tls);
    // Before the servers: their scitokens.cfg names its URL.
    const idp = await createIdp(root, { issuer, tls, audience: AUDIENCE });
    const base = { root, mode, issuer, idp };
    const [a, b] = await Promise.all([createXrootd(base, 'a', acct), createXrootd(base, 'b', acct)]);
    const info: TestbedInfo = {
      root, caFile: join(pki, 'ca.pem'), caDir: join(pki, 'cadir'), tls, issuer, idp,
      servers: { a, b }, audience: AUDIENCE, mode,
    };
    await writeFileMode(join(root, 'testbed.json'), `${JSON.stringify(info, null, 2)}\n`, 0o644);
    return { ...info, stop };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

/** The TestbedInfo of a running bed, from its root directory (`testbed.json`). */
export async function readTestbedInfo(root: string): Promise<TestbedInfo> {
  return JSON.parse(await readFile(join(root, 'testbed.json'), 'utf8')) as TestbedInfo;
}

/** Stop every server under `tb.root` (also extra ones), the IdP, the issuer, and remove the root dir. */
export async function stopTestbed(tb: Pick<TestbedInfo, 'root'> & { issuer: Pick<TestbedInfo['issuer'], 'pidFile'> }): Promise<void> {
  let entries: string[] = [];
  try {
    entries = await readdir(tb.root);
  } catch {
    return;
  }
  await Promise.all(entries.flatMap((d) => ['xrootd.pid', 'idp.pid'].map(async (name) => {
    const pidFile = join(tb.root, d, name);
    if (existsSync(pidFile)) await stopPid(pidFile, 'SIGTERM');
  })));
  await stopPid(tb.issuer.pidFile, 'SIGTERM');
  if (process.env.PETREL_KEEP_TESTBED === '1') {
    process.stderr.write(`testbed: kept ${tb.root} (PETREL_KEEP_TESTBED=1)\n`);
  } else {
    await rm(tb.root, { recursive: true, force: true });
  }
}

async function stopPid(pidFile: string, signal: NodeJS.Signals): Promise<void> {
  const pid = await readPid(pidFile);
  if (pid !== undefined && alive(pid)) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone meanwhile
    }
    const start = Date.now();
    let escalated = signal === 'SIGKILL';
    while (alive(pid)) {
      if (!escalated && Date.now() - start > 10_000) {
        process.kill(pid, 'SIGKILL');
        escalated = true;
      }
      if (Date.now() - start > 20_000) throw new Error(`testbed: pid ${pid} (${pidFile}) does not die`);
      await sleep(25);
    }
  }
  await rm(pidFile, { force: true });
}

/**
 * One more XRootD server `name` (own data dir, same CA and issuer), e.g. for tests that kill
 * servers. `stopTestbed` stops it too. `publicRead`: paths anyone may read without a token (an
 * authdb behind the token plugin), as a public namespace's servers serve them.
 */
export async function startXrootd(tb: TestbedInfo, name: string, opts: { port?: number; tpc?: boolean; publicRead?: string[]; cacheOf?: XrootdServer } = {}): Promise<XrootdServer> {
  const a = tb.servers.a;
  const acct: Account = { user: (await accountName(a.uid)) ?? String(a.uid), uid: a.uid, gid: a.gid };
  return createXrootd(tb, name, acct, opts.port, { tpc: opts.tpc ?? true, ...(opts.publicRead ? { publicRead: opts.publicRead } : {}), ...(opts.cacheOf ? { cacheOf: opts.cacheOf } : {}) });
}

async function accountName(uid: number): Promise<string | undefined> {
  try {
    return (await run('getent', ['passwd', String(uid)])).split(':')[0];
  } catch {
    return undefined;
  }
}

/** Send `signal` (default SIGTERM; SIGKILL after 10 s) and wait until the process is gone. */
export async function stopServer(s: XrootdServer, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await stopPid(s.pidFile, signal);
}

/** (Re)start `s` on the same port from its start script; waits until it answers HTTPS. */
export async function restartServer(s: XrootdServer): Promise<void> {
  await stopPid(s.pidFile, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await launch(s);
      return;
    } catch (e) {
      // The old socket may linger for a moment.
      if (!(e instanceof ServerStartError && e.portInUse) || Date.now() > deadline) throw e;
      await sleep(250);
    }
  }
}

/** Stop the OpenID provider (a "provider down" window); `startIdp` brings it back. */
export async function stopIdp(tb: Pick<TestbedInfo, 'idp'>, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await stopPid(tb.idp.pidFile, signal);
}

/**
 * Start the OpenID provider again on its port, with its state (clients, grants, refresh tokens,
 * config, statistics) and key; waits until it listens. Does nothing while it runs.
 */
export async function startIdp(tb: Pick<TestbedInfo, 'idp' | 'issuer' | 'tls' | 'audience'>): Promise<void> {
  const pid = await readPid(tb.idp.pidFile);
  if (pid !== undefined && alive(pid)) return;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await launchIdp(tb, tb.idp, tb.idp.port);
      return;
    } catch (e) {
      if (!(e instanceof ServerStartError && e.portInUse) || Date.now() > deadline) throw e;
      await sleep(250);
    }
  }
}

/** Whether the server's process is running. */
export async function isRunning(s: XrootdServer): Promise<boolean> {
  const pid = await readPid(s.pidFile);
  return pid !== undefined && alive(pid);
}

function b64url(x: Buffer | string): string {
  return Buffer.from(x).toString('base64url');
}

/** A WLCG token (ES256, kid k1) from the test bed's issuer. */
export async function mintToken(tb: Pick<TestbedInfo, 'issuer' | 'audience'>, claims: TokenClaims): Promise<string> {
  const jwk = JSON.parse(await readFile(tb.issuer.keyFile, 'utf8')) as Record<string, string>;
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  const now = Math.floor(Date.now() / 1000);
  const exp = now + (claims.expiresIn ?? 600);
  const iat = exp <= now ? exp - 600 : now;
  const aud = claims.aud === undefined ? tb.audience : claims.aud;
  const payload: Record<string, unknown> = {
    iss: claims.iss ?? tb.issuer.url,
    sub: claims.sub ?? 'petrel-test',
    ...(aud === null ? {} : { aud }),
    exp,
    iat,
    nbf: claims.nbf ?? iat,
    jti: randomUUID(),
    scope: claims.scope,
    'wlcg.ver': '1.0',
    ...claims.extra,
  };
  const input = `${b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'k1' }))}.${b64url(JSON.stringify(payload))}`;
  const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  if (claims.badSignature) sig[5] = (sig[5] ?? 0) ^ 0xff;
  return `${input}.${b64url(sig)}`;
}

/**
 * Write a file into the server's data dir (URL path `path`), creating parent dirs; `data` is the
 * content or a size for random bytes. The server user can still overwrite and delete it.
 * Returns the local path.
 */
export async function writeDataFile(s: XrootdServer, path: string, data: Buffer | number): Promise<string> {
  const local = resolve(s.dataDir, `.${path.startsWith('/') ? path : `/${path}`}`);
  if (!local.startsWith(s.dataDir + sep)) throw new Error(`testbed: ${path} is outside the data dir`);
  const chownable = isRoot();
  // Create parents one by one so each can be handed to the server user.
  let dir = s.dataDir;
  for (const part of dirname(local).slice(s.dataDir.length).split(sep).filter(Boolean)) {
    dir = join(dir, part);
    try {
      await mkdir(dir);
      if (chownable) await chown(dir, s.uid, s.gid);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!(await stat(dir)).isDirectory()) throw e;
    }
  }
  if (typeof data === 'number') {
    const fh = await open(local, 'w', 0o664);
    try {
      const chunk = 16 << 20;
      for (let off = 0; off < data; off += chunk) await fh.write(randomBytes(Math.min(chunk, data - off)));
    } finally {
      await fh.close();
    }
  } else {
    await writeFile(local, data, { mode: 0o664 });
  }
  if (chownable) await chown(local, s.uid, s.gid);
  return local;
}
