import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { TransferSpec } from '../../src/api/index.js';
import { PetrelError } from '../../src/errors.js';
import { locationText, locationUnder, parseLocation, type Location } from '../../src/transfer/index.js';
import type { Direction } from './plan.js';

/**
 * `-r`: the trees of a job, by cp's and rsync's rule, for get, put and copy alike: `SRC/dir`
 * puts the tree under `DEST/dir/`, `SRC/dir/` (a trailing slash) puts its contents directly
 * into `DEST/`. The agent lists them (the job shows `listing`) and queues a transfer per file
 * as it goes; here each tree is only named: a source directory, and the directory it goes to.
 */

/** The directory name a source without a trailing slash brings along. */
function topName(text: string, loc: Location): string[] {
  if (/\/$/.test(text)) return [];
  const name = loc.kind === 'local' ? basename(loc.path) : decodeURIComponent(loc.url.pathname.replace(/\/+$/, '').split('/').pop() ?? '');
  if (!name || name === '..' || name === '.') throw new PetrelError('USAGE', `cannot tell a directory name from ${text}`, { hint: 'end it with / to transfer its contents' });
  return [name];
}

/** `petrel get|put|copy -r SRC... DEST`: one tree per source, each with the directory its files go under. */
export async function planTrees(kind: Direction, sources: readonly string[], destText: string): Promise<TransferSpec[]> {
  const dest = parseLocation(destText);
  const trees: TransferSpec[] = [];
  for (const text of sources) {
    const loc = parseLocation(text);
    if (loc.kind === 'local') {
      if (kind !== 'put') throw new PetrelError('USAGE', `\`petrel ${kind}\` takes URLs as sources: ${text} is a local path`, { hint: 'to upload, use `petrel put -r`' });
      // A local tree is checked here, where a typo is cheap to tell.
      const info = await stat(loc.path).catch(() => undefined);
      if (!info?.isDirectory()) throw new PetrelError('USAGE', `${text} is not a directory`, { hint: 'leave out -r to transfer one file' });
    } else if (kind === 'put') {
      throw new PetrelError('USAGE', `\`petrel put\` takes local sources: ${text} is a URL`, { hint: 'to download, use `petrel get -r`' });
    }
    trees.push({ source: locationText(loc), destination: locationUnder(dest, topName(text, loc)) });
  }
  return trees;
}
