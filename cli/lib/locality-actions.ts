import { createTokenResolver, discoverySource, type TokenSource } from '../../src/auth/index.js';
import { caFileFromEnv } from '../../src/config.js';
import { PetrelError } from '../../src/errors.js';
import { createTapeClient, storagePath, type ArchiveInfo } from '../../src/tape/index.js';
import { createHttpClient, parseLocation } from '../../src/transfer/index.js';
import { agentClient } from './agent-process.js';
import { EXIT, print, printJson } from './output.js';
import { readSecretFile } from './secret-file.js';
import { openAgentSource } from './warm-actions.js';

type LocalityReport = ArchiveInfo & { url: string };

function remoteUrls(texts: readonly string[]): URL[] {
  return texts.map((t) => {
    const loc = parseLocation(t);
    if (loc.kind !== 'remote') throw new PetrelError('USAGE', `${t} is a local path`, { hint: 'give the URLs of files on a tape-backed storage' });
    return loc.url;
  });
}

/** `petrel locality URL...`: one archiveinfo call per (storage, token). */
export async function locality(texts: readonly string[], opts: { json?: boolean; token?: string }): Promise<number> {
  const urls = remoteUrls(texts);
  const explicit = opts.token ? await readSecretFile(opts.token, 'token') : undefined;
  const client = agentClient();
  const http = createHttpClient({ caFile: caFileFromEnv() });
  const tape = createTapeClient({ http });
  const given: TokenSource = { name: '--token', get: async () => (explicit ? { token: explicit, source: '--token' } : undefined) };
  const resolver = createTokenResolver([given, openAgentSource(client), discoverySource]);
  try {
    // Files of one storage asked with one token go in one call.
    const groups = new Map<string, { origin: URL; token: string | null; urls: URL[] }>();
    for (const url of urls) {
      const token = (await resolver.resolve({ url, operation: 'stage' }))?.token ?? null;
      const key = `${url.origin}\n${token ?? ''}`;
      const group = groups.get(key) ?? { origin: url, token, urls: [] };
      group.urls.push(url);
      groups.set(key, group);
    }
    const reports = new Map<string, LocalityReport>();
    for (const group of groups.values()) {
      let answers: ArchiveInfo[];
      try {
        const endpoint = await tape.endpointFor(group.origin, group.token);
        answers = await tape.archiveInfo(endpoint, group.urls.map(storagePath), group.token);
      } catch (e) {
        if (!(e instanceof PetrelError)) throw e;
        answers = group.urls.map((u) => ({ path: storagePath(u), error: e.message }));
      }
      group.urls.forEach((u, i) => reports.set(u.href, { url: u.href, ...(answers[i] as ArchiveInfo) }));
    }
    const ordered = urls.map((u) => reports.get(u.href) as LocalityReport);
    if (opts.json) printJson(ordered);
    else for (const r of ordered) print(`${r.path}\t${r.locality ?? `error: ${r.error}`}`);
    return ordered.every((r) => r.locality) ? EXIT.ok : EXIT.failed;
  } finally {
    await client.close();
    await http.close();
  }
}
