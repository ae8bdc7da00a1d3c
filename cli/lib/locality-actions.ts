import { PetrelError } from '../../src/errors.js';
import { createTapeClient, storagePath, type ArchiveInfo } from '../../src/tape/index.js';
import { EXIT, print, printJson } from './output.js';
import { remoteSession, remoteUrls } from './remote-tokens.js';

type LocalityReport = ArchiveInfo & { url: string };

/** `petrel locality URL...`: one archiveinfo call per (storage, token). */
export async function locality(texts: readonly string[], opts: { json?: boolean; token?: string }): Promise<number> {
  const urls = remoteUrls(texts, 'files on a tape-backed storage');
  const session = await remoteSession(opts);
  const tape = createTapeClient({ http: session.http });
  const resolver = session.tokens;
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
    await session.close();
  }
}
