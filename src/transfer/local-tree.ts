import { opendir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PetrelError } from '../errors.js';
import { localError } from './errors.js';

export interface LocalWalkOptions {
  /** Follow symbolic links (--follow-symlinks); without it they are skipped, never followed out of the tree. */
  followSymlinks?: boolean;
  /** Each directory, the root (rel []) first, before any file in it. */
  onDirectory(rel: string[]): Promise<void> | void;
  /** Each regular file, with its path below the root. */
  onFile(path: string, rel: string[]): Promise<void> | void;
  signal?: AbortSignal;
}

/**
 * Walks a local directory breadth-first, one directory open at a time (opendir: a directory of
 * 100,000 entries is read as a stream). Followed links are guarded against loops by the real
 * path of each directory walked.
 */
export async function walkLocal(root: string, opts: LocalWalkOptions): Promise<void> {
  const info = await stat(root).catch((e: unknown) => {
    throw localError(e, root, 'reading');
  });
  if (!info.isDirectory()) throw new PetrelError('USAGE', `${root} is not a directory`, { hint: 'leave out -r to transfer one file' });
  const seen = new Set<string>([await realpath(root)]);
  let level: { path: string; rel: string[] }[] = [{ path: root, rel: [] }];
  while (level.length) {
    const next: { path: string; rel: string[] }[] = [];
    for (const dir of level) {
      opts.signal?.throwIfAborted();
      await opts.onDirectory(dir.rel);
      const handle = await opendir(dir.path).catch((e: unknown) => {
        throw localError(e, dir.path, 'listing');
      });
      for await (const entry of handle) {
        const path = join(dir.path, entry.name);
        const rel = [...dir.rel, entry.name];
        let isFile = entry.isFile();
        let isDir = entry.isDirectory();
        if (entry.isSymbolicLink()) {
          if (!opts.followSymlinks) continue;
          const target = await stat(path).catch(() => undefined);
          if (!target) continue;
          isFile = target.isFile();
          isDir = target.isDirectory();
        }
        if (isFile) await opts.onFile(path, rel);
        else if (isDir) {
          const real = await realpath(path);
          if (seen.has(real)) continue;
          seen.add(real);
          next.push({ path, rel });
        }
      }
    }
    level = next;
  }
}
