import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

interface DirSync {
  /** The fsync running now. */
  running: Promise<void>;
  /** The one queued behind it, shared by every rename made while `running` runs. */
  next?: Promise<void>;
}

const syncs = new Map<string, DirSync>();

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function startSync(dir: string): DirSync {
  const entry: DirSync = { running: fsyncDir(dir) };
  syncs.set(dir, entry);
  const settle = () => {
    if (syncs.get(dir) === entry && !entry.next) syncs.delete(dir);
  };
  entry.running.then(settle, settle);
  return entry;
}

/**
 * Makes the renames done in `dir` so far durable. Renames arriving while an fsync of the directory
 * runs share the next one (group commit): a job of many small files into one directory pays a few
 * directory fsyncs, not one per file.
 */
export function syncDirectory(dir: string): Promise<void> {
  const current = syncs.get(dir);
  if (!current) return startSync(dir).running;
  // The running fsync may have begun before the caller's rename: wait for the one after it.
  current.next ??= current.running.catch(() => undefined).then(() => startSync(dir).running);
  return current.next;
}

/** Renames into place and makes the rename itself durable (fsync of the directory). */
export async function renameDurably(from: string, to: string): Promise<void> {
  await rename(from, to);
  await syncDirectory(dirname(to));
}
