import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Renames into place and makes the rename itself durable (fsync of the directory). */
export async function renameDurably(from: string, to: string): Promise<void> {
  await rename(from, to);
  const dir = await open(dirname(to), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
