import { createTokenResolver, discoverySource, type TokenResolver, type TokenSource } from '../../src/auth/index.js';
import { caFileFromEnv, loadConfig } from '../../src/config.js';
import type { FederationRouter, Located } from '../../src/federation/index.js';
import { resolvePaths } from '../../src/paths.js';
import { PetrelError } from '../../src/errors.js';
import { createHttpClient, isFederated, parseLocation, type HttpClient } from '../../src/transfer/index.js';
import { agentClient } from './agent-process.js';
import { readSecretFile } from './secret-file.js';
import { openAgentSource } from './warm-actions.js';

/** The URLs a command names, each a remote location (davs:// as https://). */
export function remoteUrls(texts: readonly string[], what: string): URL[] {
  return texts.map((t) => {
    const loc = parseLocation(t);
    if (loc.kind !== 'remote') throw new PetrelError('USAGE', `${t} is a local path`, { hint: `give the URLs of ${what}` });
    return loc.url;
  });
}

/**
 * What a one-shot storage command (ls, stat, rm, locality) works with in this process: an HTTP
 * client, tokens from --token FILE, else the agent's open wallet, else bearer-token discovery, and
 * for federation URLs the director's origin (PROPFIND and DELETE go to origins).
 */
export async function remoteSession(opts: { token?: string | undefined }): Promise<{ http: HttpClient; tokens: TokenResolver; locate(url: URL, op: 'list' | 'delete'): Promise<Located>; close(): Promise<void> }> {
  const explicit = opts.token ? await readSecretFile(opts.token, 'token') : undefined;
  const client = agentClient();
  const http = createHttpClient({ caFile: caFileFromEnv() });
  const given: TokenSource = { name: '--token', get: async () => (explicit ? { token: explicit, source: '--token' } : undefined) };
  let router: Promise<FederationRouter> | undefined;
  return {
    http,
    tokens: createTokenResolver([given, openAgentSource(client), discoverySource]),
    async locate(url, op) {
      const federation = await import('../../src/federation/index.js');
      if (isFederated(url)) router ??= loadConfig(resolvePaths().configFile).then((config) => federation.createConfiguredRouter(config));
      return federation.locate(router ? await router : undefined, url, op);
    },
    async close() {
      await client.close();
      await http.close();
    },
  };
}
