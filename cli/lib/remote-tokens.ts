import { createTokenResolver, discoverySource, type TokenResolver, type TokenSource } from '../../src/auth/index.js';
import { caFileFromEnv } from '../../src/config.js';
import { PetrelError } from '../../src/errors.js';
import { createHttpClient, parseLocation, type HttpClient } from '../../src/transfer/index.js';
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
 * client, and tokens from --token FILE, else the agent's open wallet, else bearer-token discovery.
 */
export async function remoteSession(opts: { token?: string | undefined }): Promise<{ http: HttpClient; tokens: TokenResolver; close(): Promise<void> }> {
  const explicit = opts.token ? await readSecretFile(opts.token, 'token') : undefined;
  const client = agentClient();
  const http = createHttpClient({ caFile: caFileFromEnv() });
  const given: TokenSource = { name: '--token', get: async () => (explicit ? { token: explicit, source: '--token' } : undefined) };
  return {
    http,
    tokens: createTokenResolver([given, openAgentSource(client), discoverySource]),
    async close() {
      await client.close();
      await http.close();
    },
  };
}
