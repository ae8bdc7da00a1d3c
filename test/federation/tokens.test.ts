// Tokens for federation namespaces: `petrel warm pelican://…` logs in where the director's
// Token-Generation header says, asks for scopes cut to max-scope-depth, and the agent reads with
// the credential; a token from an issuer the namespace does not trust is refused at submission.
// The stand-in director (test/helpers/federation.ts) routes to the test bed's XRootD server a,
// which checks every token against the test bed's IdP.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { finished, makeHome, petrel, startAgent, waitForJob, type Home } from '../helpers/agent.js';
import { standInFederation, type StandInFederation } from '../helpers/federation.js';
import { warmWithApproval } from '../helpers/warm.js';
import { mintToken, writeDataFile } from '../testbed/index.js';

const tb = inject('testbed');
const { a } = tb.servers;
const PASSWORD = 'federated horse battery staple';
const data = randomBytes(70_000);

let fed: StandInFederation;
let home: Home;
beforeAll(async () => {
  fed = await standInFederation(tb, [
    // XRootD's scope paths start at / (its base_path): so does the namespace's.
    { prefix: '/ftok', caches: [a.url], origin: a.url, requireToken: true, writable: true, issuers: [tb.idp.url], maxScopeDepth: 2, basePath: '/' },
    { prefix: '/fother', caches: [a.url], origin: a.url, requireToken: true, issuers: [tb.idp.url], tokenIssuer: 'https://issuer.other.example.org' },
  ]);
  home = await makeHome(tb);
  await writeDataFile(a, '/ftok/run1/sub/f.bin', data);
});
afterAll(async () => {
  await petrel(home, ['agent', 'stop']);
  await fed.close();
  await home.cleanup();
});

const pelican = (path: string) => `pelican://${fed.host}${path}`;

describe('federation tokens', () => {
  it('warm logs in at the issuer the director names, with scopes cut to max-scope-depth; the agent reads with them', async () => {
    const warm = await warmWithApproval(tb, home, [pelican('/ftok/run1/sub/f.bin')], PASSWORD);
    expect(warm.code, warm.stderr).toBe(0);
    expect(warm.stderr).toContain(`${tb.idp.url}/device`);
    // /ftok/run1/sub/f.bin → its directory /ftok/run1/sub → two components: /ftok/run1.
    expect(warm.stdout).toContain('storage.read:/ftok/run1');
    expect(warm.stdout).not.toContain('storage.read:/ftok/run1/sub');
    expect(warm.stdout).toContain(`warmed ${fed.host}/ftok@${new URL(tb.idp.url).host}:`);
    const list = await petrel(home, ['wallet', 'list', '--json']);
    expect(list.stdout).toContain(`pelican://${fed.host}/ftok`);

    const agent = await startAgent(home);
    try {
      const dest = join(home.dir, 'f.bin');
      const sub = await petrel(home, ['get', '--async', pelican('/ftok/run1/sub/f.bin'), dest]);
      expect(sub.code, sub.stderr).toBe(0);
      const done = await waitForJob(agent.client, sub.stdout.trim(), finished, 60_000);
      expect(done.state, JSON.stringify(done)).toBe('succeeded');
      expect(await readFile(dest)).toEqual(data);
      // `petrel token` gives the namespace's token for curl and friends, from the agent's wallet.
      const tok = await petrel(home, ['token', '--json', pelican('/ftok/run1/sub/f.bin')]);
      expect(tok.code, tok.stderr).toBe(0);
      const printed = JSON.parse(tok.stdout) as { token: string; credential: string };
      expect(printed.credential).toBe(`${fed.host}/ftok@${new URL(tb.idp.url).host}`);
      const claims = JSON.parse(Buffer.from(printed.token.split('.')[1] ?? '', 'base64url').toString()) as { iss: string; scope: string };
      expect(claims.iss).toBe(tb.idp.url);
      expect(claims.scope).toContain('storage.read:/ftok/run1');
    } finally {
      await agent.stop();
    }
  });

  it('a token from an issuer the namespace does not trust is refused before anything is queued', async () => {
    const tokenFile = join(home.dir, 'other-token');
    // The test bed's other issuer: XRootD would take it, the namespace does not.
    await writeFile(tokenFile, await mintToken(tb, { scope: 'storage.read:/ftok', expiresIn: 600 }), { mode: 0o600 });
    const res = await petrel(home, ['get', '--async', pelican('/ftok/run1/sub/f.bin'), join(home.dir, 'x.bin'), '--token', tokenFile]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`the token was issued by ${tb.issuer.url}, but pelican://${fed.host}/ftok trusts tokens only from ${tb.idp.url}`);
    expect(res.stderr).toContain(`petrel warm pelican://${fed.host}/ftok/run1/sub/f.bin`);
    const jobs = await petrel(home, ['job', 'list', '--json']);
    expect(jobs.stdout).not.toContain('x.bin');
  });

  it('warm refuses a namespace whose director names an issuer the namespace does not list', async () => {
    const res = await petrel(home, ['warm', pelican('/fother/x'), '--password-stdin'], { input: `${PASSWORD}\n` });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain(`the director names https://issuer.other.example.org to log in at, but pelican://${fed.host}/fother trusts only ${tb.idp.url}`);
  });
});
