import { createTokenBroker, createOidc, type Oidc, agentSource, brokerSource, createTokenResolver, discoverySource, noTokenError, type TokenSource, storeCredential, warmOne, warmTargets, type WarmTarget } from '../../src/auth/index.js';
import { caFileFromEnv, loadConfig, type AgentConfig } from '../../src/config.js';
import { isFederated, parseLocation } from '../../src/transfer/index.js';
import { PetrelError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { resolvePaths } from '../../src/paths.js';
import { initWallet, unlockWallet, walletPresent } from '../../src/wallet/index.js';
import type { AgentClient } from '../../src/api/index.js';
import type { WalletKey } from '../../src/wallet/index.js';
import { agentClient, ensureAgent, withAgentClient } from './agent-process.js';
import { EXIT, print, printJson } from './output.js';
import { readPassword, type PasswordOptions } from './password.js';
import { readSecretFile } from './secret-file.js';

type WarmOpts = PasswordOptions & { json?: boolean; write?: boolean; stage?: boolean; agent?: boolean };

function parseUrls(texts: readonly string[]): URL[] {
  return texts.map((t) => {
    const loc = parseLocation(t);
    if (loc.kind === 'remote') return loc.url;
    throw new PetrelError('USAGE', `not a storage URL: ${t}`, { hint: 'warm logs in for https://, davs://, pelican:// or osdf:// URLs' });
  });
}

/**
 * What to log in for: a federation URL's issuer and scopes come from its director (the
 * Token-Generation header); any other URL's from the issuers in config.json.
 */
async function targetsFor(urls: readonly URL[], config: AgentConfig, configFile: string, ops: { write?: boolean; stage?: boolean }): Promise<WarmTarget[]> {
  const federated = urls.filter(isFederated);
  const targets = warmTargets(config.issuers, urls.filter((u) => !isFederated(u)), ops, configFile);
  if (!federated.length) return targets;
  const { createConfiguredRouter, warmTargetFor } = await import('../../src/federation/index.js');
  const router = createConfiguredRouter(config);
  for (const url of federated) {
    const target = warmTargetFor(await router.route(url, ops.write ? 'write' : 'read'), url, ops);
    const same = targets.find((t) => t.setting.prefix === target.setting.prefix && t.setting.issuer === target.setting.issuer);
    if (same) {
      same.scopes = [...new Set([...same.scopes, ...target.scopes])];
      same.urls.push(url);
    } else {
      targets.push(target);
    }
  }
  return targets;
}

/** Unlocks the wallet with the user's password, creating the wallet first if there is none. */
async function walletKey(path: string, opts: PasswordOptions): Promise<{ key: WalletKey; password: string }> {
  if (!walletPresent(path)) {
    process.stderr.write(`petrel: no wallet yet; creating ${path}\n`);
    const password = await readPassword(opts, 'new wallet password: ', { confirm: true });
    return { key: await initWallet(path, password), password };
  }
  const password = await readPassword(opts, 'wallet password: ');
  return { key: (await unlockWallet(path, password)).key, password };
}

/** Hands the wallet to the agent (starting it if needed): waiting transfers then go on. */
async function openInAgent(password: string): Promise<void> {
  await withAgentClient(async (c) => {
    await ensureAgent(c);
    await c.openWallet({ password });
  });
}

/** `petrel warm URL... [--write] [--stage]`: device-code login per issuer prefix, then open the agent's wallet. */
export async function warm(urlTexts: string[], opts: WarmOpts): Promise<number> {
  const paths = resolvePaths();
  const config = await loadConfig(paths.configFile);
  const targets = await targetsFor(parseUrls(urlTexts), config, paths.configFile, opts);
  const { key, password } = await walletKey(paths.walletFile, opts);
  const oidc = createOidc({ caFile: caFileFromEnv() });
  const warmed = [];
  try {
    for (const target of targets) {
      const credential = await warmOne(target, {
        oidc,
        walletPath: paths.walletFile,
        key,
        show: (login) => {
          process.stderr.write(`To log in to ${target.setting.issuer} for ${target.setting.prefix}\n  open ${login.verificationUri}\n  and enter the code ${login.userCode}\n`);
          if (login.verificationUriComplete) process.stderr.write(`  (or open ${login.verificationUriComplete})\n`);
        },
      });
      warmed.push({ credential: credential.id, issuer: credential.issuer, prefixes: credential.prefixes, scopes: credential.scopes });
      if (!opts.json) print(`warmed ${credential.id}: ${credential.scopes.join(' ')}`);
    }
  } finally {
    await oidc.close();
  }
  if (opts.agent !== false) await openInAgent(password);
  if (opts.json) printJson({ warmed });
  return EXIT.ok;
}

type TokenOpts = PasswordOptions & { json?: boolean; write?: boolean; stage?: boolean };

/** The wallet unlocked here, with the user's password, only when asked (the agent had nothing). */
function unlockedWalletSource(opts: TokenOpts): TokenSource & { close(): Promise<void> } {
  let oidc: Oidc | undefined;
  return {
    name: 'wallet',
    async get(req) {
      const paths = resolvePaths();
      if (!walletPresent(paths.walletFile)) return undefined;
      const config = await loadConfig(paths.configFile);
      const { key } = await unlockWallet(paths.walletFile, await readPassword(opts, 'wallet password: '));
      oidc ??= createOidc({ caFile: caFileFromEnv() });
      const broker = createTokenBroker({
        wallet: { path: paths.walletFile, key: () => key, initialized: () => true },
        oidc,
        issuers: config.issuers,
        minValidityMs: config.tokens.minValidityMs,
        logger: createLogger({ stream: process.stderr, level: 'warn' }),
      });
      return brokerSource(broker, { lenient: true }).get(req);
    },
    close: async () => oidc?.close(),
  };
}

/** The agent's wallet over the socket, when an agent runs with its wallet open. */
export function openAgentSource(client: AgentClient): TokenSource {
  const viaAgent = agentSource(client, {
    onWaiting: (e) => {
      // Nothing there for this URL: look further. A dead credential is the user's to fix.
      if (e.code === 'CREDENTIAL_NEEDED') return undefined;
      throw e;
    },
  });
  return {
    name: 'agent',
    async get(req) {
      const open = await client.wallet().then(
        (w) => w.open,
        (e: unknown) => {
          if (e instanceof PetrelError && e.code === 'AGENT_UNREACHABLE') return false;
          throw e;
        },
      );
      return open ? viaAgent.get(req) : undefined;
    },
  };
}

/** `petrel token URL`: a valid access token on stdout, for other tools (as oidc-token does). */
export async function token(urlText: string, opts: TokenOpts): Promise<number> {
  const [url] = parseUrls([urlText]) as [URL];
  const req = { url, operation: opts.stage ? ('stage' as const) : opts.write ? ('write' as const) : ('read' as const) };
  const client = agentClient();
  const wallet = unlockedWalletSource(opts);
  try {
    const got = await createTokenResolver([openAgentSource(client), wallet, discoverySource]).resolve(req);
    if (!got) throw noTokenError(req);
    const reply = { token: got.token, source: got.source, ...(got.expiresAt ? { expiresAt: new Date(got.expiresAt).toISOString() } : {}), ...(got.credentialId ? { credential: got.credentialId } : {}) };
    if (opts.json) printJson(reply);
    else print(reply.token);
    return EXIT.ok;
  } finally {
    await client.close();
    await wallet.close();
  }
}

type ImportOpts = PasswordOptions & {
  json?: boolean;
  issuer: string;
  clientId: string;
  clientSecretFile?: string;
  refreshTokenFile?: string;
  accessTokenFile?: string;
  scope?: string[];
  prefix?: string;
};

/** `petrel wallet import`: bring a refresh token from oidc-agent or htgettoken. */
export async function importCredential(_: unknown, opts: ImportOpts): Promise<number> {
  const paths = resolvePaths();
  const config = await loadConfig(paths.configFile);
  const issuer = new URL(opts.issuer).href.replace(/\/$/, '');
  const setting = opts.prefix
    ? { prefix: opts.prefix, issuer, basePath: config.issuers.find((s) => s.prefix === opts.prefix)?.basePath ?? '/', tokenExchange: false, audience: config.issuers.find((s) => s.prefix === opts.prefix)?.audience }
    : config.issuers.find((s) => s.issuer.replace(/\/$/, '') === issuer);
  if (!setting) throw new PetrelError('USAGE', `which storage does ${issuer} serve?`, { hint: `pass --prefix URL, or add an issuer setting for it to ${paths.configFile}` });
  if (Boolean(opts.refreshTokenFile) === Boolean(opts.accessTokenFile)) {
    throw new PetrelError('USAGE', 'give exactly one of --refresh-token-file and --access-token-file');
  }
  const clientSecret = opts.clientSecretFile ? await readSecretFile(opts.clientSecretFile, 'client secret') : undefined;
  const scopes = opts.scope?.flatMap((s) => s.split(/\s+/)).filter(Boolean) ?? ['storage.read:/'];
  const { key, password } = await walletKey(paths.walletFile, opts);
  const client = { issuer, clientId: opts.clientId, ...(clientSecret ? { clientSecret } : {}) };
  const oidc = createOidc({ caFile: caFileFromEnv() });
  try {
    let tokens;
    let obtainedBy: 'import' | 'exchange' = 'import';
    if (opts.refreshTokenFile) {
      const refreshToken = await readSecretFile(opts.refreshTokenFile, 'refresh token');
      // A first refresh proves the token works, and gives the access token and a rotated refresh token.
      tokens = await oidc.refresh(client, refreshToken, { scopes, audience: setting.audience });
      tokens.refreshToken ??= refreshToken;
    } else {
      // FTS's way: trade a short-lived access token (RFC 8693) for tokens that can be kept alive.
      const accessToken = await readSecretFile(opts.accessTokenFile as string, 'access token');
      tokens = await oidc.exchange(client, accessToken, { scopes, audience: setting.audience, wantRefresh: true });
      obtainedBy = 'exchange';
    }
    const credential = await storeCredential(paths.walletFile, key, { setting: { ...setting, issuer }, scopes }, tokens, obtainedBy, client);
    if (opts.json) printJson({ imported: credential.id, scopes: credential.scopes, obtainedBy, refreshable: Boolean(credential.refreshToken) });
    else print(`imported ${credential.id}: ${credential.scopes.join(' ')}${credential.refreshToken ? '' : ' (no refresh token: it lasts as long as its access token)'}`);
  } finally {
    await oidc.close();
  }
  const running = await withAgentClient((c) => c.wallet()).catch(() => undefined);
  if (running) await openInAgent(password);
  return EXIT.ok;
}
