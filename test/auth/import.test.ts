// `petrel wallet import` with a refresh token obtained elsewhere (as oidc-agent or htgettoken
// would hold one), then the credential dying at the issuer; and where explicit job tokens are
// kept depending on the wallet.
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { createAgentClient } from '../../src/api/client.js';
import { createOidc } from '../../src/auth/oidc.js';
import { finished, makeHome, petrel, waitForJob, type Home } from '../helpers/agent.js';
import { approveDevice, mintToken, setIdpConfig, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');
const a = tb.servers.a;
const PASSWORD = 'import-test-password';

/** A client and its tokens from the IdP's device flow, obtained outside petrel. */
async function loginElsewhere(scopes: string[]) {
  const oidc = createOidc({ caFile: tb.caFile });
  try {
    const client = await oidc.register(tb.idp.url, [...new Set(['openid', 'offline_access', ...scopes])]);
    const login = await oidc.deviceLogin(client, { scopes: ['openid', ...scopes] });
    await approveDevice(tb, login.userCode);
    return { client, tokens: await login.complete() };
  } finally {
    await oidc.close();
  }
}

describe('wallet import, and a credential the issuer kills', () => {
  let home: Home;
  const prefix = `${a.url}/imp`;
  beforeAll(async () => {
    home = await makeHome(tb, { issuers: [{ prefix, issuer: tb.idp.url }], tokens: { refreshSchedule: '0 0 1 1 *' } });
    await writeDataFile(a, '/imp/x.bin', 1000);
  });
  afterAll(async () => {
    await petrel(home, ['agent', 'stop']);
    await home.cleanup();
  });

  it('imports a refresh token, gets a working token from it, and marks it dead when the issuer revokes the grant', async () => {
    // 60-s tokens: under the 5-min minimum validity, so the background refresh renews them at once.
    await setIdpConfig(tb, { accessTokenTtl: 60 });
    onTestFinished(() => setIdpConfig(tb, { accessTokenTtl: 600 }).then(() => undefined));
    const { client, tokens } = await loginElsewhere(['offline_access', 'storage.read:/imp']);
    const refreshToken = tokens.refreshToken as string;
    const files = await mkdtemp(join(home.dir, 'secrets-'));
    await writeFile(join(files, 'rt'), `${refreshToken}\n`, { mode: 0o600 });
    await writeFile(join(files, 'secret'), client.clientSecret ?? '', { mode: 0o600 });
    expect((await petrel(home, ['agent', 'start'])).code).toBe(0);
    const imp = await petrel(home, ['wallet', 'import', '--issuer', tb.idp.url, '--client-id', client.clientId, '--client-secret-file', join(files, 'secret'),
      '--refresh-token-file', join(files, 'rt'), '--scope', 'storage.read:/imp', '--password-stdin'], { input: `${PASSWORD}\n` });
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout).toContain('storage.read:/imp');
    expect(imp.stdout + imp.stderr).not.toContain(refreshToken);

    const c = createAgentClient({ socket: home.socket, timeoutMs: 10_000 });
    try {
      // Import opened the wallet in the running agent.
      const first = await c.submit({ kind: 'get', transfers: [{ source: `${prefix}/x.bin`, destination: join(home.dir, 'x1.bin') }], checksum: 'adler32' });
      expect((await waitForJob(c, first.id, finished, 30_000)).state).toBe('succeeded');

      // The imported token was rotated by the import; presenting the old one again makes the
      // issuer revoke the whole grant (reuse detection), so the wallet's copy dies too.
      const oidc = createOidc({ caFile: tb.caFile });
      await oidc.refresh(client, refreshToken, { scopes: ['storage.read:/imp'] }).catch(() => undefined);
      await oidc.close();
      const refreshed = await c.refreshCredentials();
      expect(refreshed.failed.map((f) => f.code)).toEqual(['CREDENTIAL_DEAD']);

      const list = await petrel(home, ['wallet', 'list', '--json']);
      expect(JSON.parse(list.stdout)).toMatchObject([{ dead: true }]);
      // Needing a renewal now, a transfer waits and names the way out.
      const st = (await c.wallet()).entries?.[0];
      expect(st?.dead).toBe(true);
    } finally {
      await c.close();
    }
  });
});

describe('wallet import of an access token', () => {
  let home: Home;
  const prefix = `${a.url}/exch`;
  beforeAll(async () => {
    home = await makeHome(tb, { issuers: [{ prefix, issuer: tb.idp.url, tokenExchange: true }], tokens: { refreshSchedule: '0 0 1 1 *' } });
    await writeDataFile(a, '/exch/z.bin', 500);
  });
  afterAll(async () => {
    await setIdpConfig(tb, { accessTokenTtl: 600 });
    await petrel(home, ['agent', 'stop']);
    await home.cleanup();
  });

  it('trades it by token exchange for a refresh token the agent then keeps alive', async () => {
    await setIdpConfig(tb, { accessTokenTtl: 60 });
    const { client, tokens } = await loginElsewhere(['storage.read:/exch']);
    expect(tokens.refreshToken).toBeUndefined();
    const files = await mkdtemp(join(home.dir, 'secrets-'));
    await writeFile(join(files, 'at'), tokens.accessToken, { mode: 0o600 });
    await writeFile(join(files, 'secret'), client.clientSecret ?? '', { mode: 0o600 });
    const imp = await petrel(home, ['wallet', 'import', '--json', '--issuer', tb.idp.url, '--client-id', client.clientId, '--client-secret-file', join(files, 'secret'),
      '--access-token-file', join(files, 'at'), '--scope', 'storage.read:/exch', '--password-stdin'], { input: `${PASSWORD}\n` });
    expect(imp.code, imp.stderr).toBe(0);
    expect(JSON.parse(imp.stdout)).toMatchObject({ obtainedBy: 'exchange', refreshable: true });
    expect((await petrel(home, ['wallet', 'open', '--password-stdin'], { input: `${PASSWORD}\n` })).code).toBe(0);
    const c = createAgentClient({ socket: home.socket, timeoutMs: 10_000 });
    try {
      // The exchanged refresh token works: renewals succeed...
      const { id } = await c.submit({ kind: 'get', transfers: [{ source: `${prefix}/z.bin`, destination: join(home.dir, 'z.bin') }], checksum: 'adler32' });
      expect((await waitForJob(c, id, finished, 30_000)).state).toBe('succeeded');
      const token = await c.token({ url: `${prefix}/z.bin`, operation: 'read' });
      // ...because with 60-s tokens and a 5-min minimum validity, every need is a renewal.
      expect(token.source, await readFile(join(home.stateDir, 'agent.log'), 'utf8')).toBe('refresh');
    } finally {
      await c.close();
    }
  });
});

describe('where explicit job tokens are kept', () => {
  let home: Home;
  beforeAll(async () => {
    // A job kept unfinished by an unreachable source keeps retrying here, so that its token is
    // asked for again and again; the host health would park it for its host instead.
    home = await makeHome(tb, { retry: { attempts: 100, baseDelayMs: 200, maxDelayMs: 1000 }, hostDownAfterFailures: 100_000 });
    await writeDataFile(a, '/seal/y.bin', 1000);
  });
  afterAll(async () => {
    await petrel(home, ['agent', 'stop']);
    await home.cleanup();
  });

  /** The database and its WAL, as text to grep. */
  async function dbText(): Promise<string> {
    let text = '';
    for (const n of (await readdir(home.stateDir)).filter((x) => x.startsWith('agent.db'))) text += await readFile(join(home.stateDir, n), 'latin1');
    return text;
  }

  it('plain without a wallet, sealed once the wallet opens, in memory only while it is closed', async () => {
    const token = await mintToken(tb, { scope: 'storage.read:/seal', expiresIn: 3600 });
    const tokenFile = join(home.dir, 'token');
    await writeFile(tokenFile, token, { mode: 0o600 });
    expect((await petrel(home, ['agent', 'start'])).code).toBe(0);
    const c = createAgentClient({ socket: home.socket, timeoutMs: 10_000 });
    try {
      expect((await c.health()).tokenStorage).toBe('database-plaintext');
      const j1 = await c.submit({ kind: 'get', token, transfers: [{ source: `${a.url}/seal/y.bin`, destination: join(home.dir, 'y1.bin') }], checksum: 'adler32' });
      expect((await waitForJob(c, j1.id, finished, 30_000)).state).toBe('succeeded');
      const status = await petrel(home, ['agent', 'status']);
      expect(status.stdout).toContain('unencrypted');
      // One still queued keeps it as given (its source's server does not answer).
      const stuck = await c.submit({ kind: 'get', token, transfers: [{ source: 'https://localhost:9/seal/y.bin', destination: join(home.dir, 'never.bin') }], checksum: 'adler32' });
      expect((await dbText()).includes(token)).toBe(true);

      expect((await petrel(home, ['wallet', 'init', '--password-stdin'], { input: `${PASSWORD}\n` })).code).toBe(0);
      expect((await c.health()).tokenStorage).toBe('wallet-sealed');
      // Opening the wallet sealed the unfinished job's token: neither the database nor its WAL holds it.
      const sealed = await dbText();
      expect(sealed.includes(token)).toBe(false);
      expect(sealed).toContain('sealed:v1:');
      const j2 = await c.submit({ kind: 'get', token, transfers: [{ source: `${a.url}/seal/y.bin`, destination: join(home.dir, 'y2.bin') }], checksum: 'adler32' });
      expect((await waitForJob(c, j2.id, finished, 30_000)).state).toBe('succeeded');

      expect((await petrel(home, ['wallet', 'close'])).code).toBe(0);
      expect((await c.health()).tokenStorage).toBe('agent-memory');
      const j3 = await c.submit({ kind: 'get', token, transfers: [{ source: 'https://localhost:9/seal/y.bin', destination: join(home.dir, 'y3.bin') }], checksum: 'adler32' });
      expect(await dbText()).toContain('in-memory');
      expect((await dbText()).includes(token)).toBe(false);
      // The sealed token of the stuck job cannot be read now: that job waits for the wallet.
      const waiting = await waitForJob(c, stuck.id, (j) => j.state === 'waiting', 30_000);
      expect(waiting.waiting?.hint).toContain('petrel wallet open');
      await c.cancel(stuck.id);
      await c.cancel(j3.id);
    } finally {
      await c.close();
    }
  });
});
