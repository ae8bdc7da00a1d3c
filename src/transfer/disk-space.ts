import { statfs } from 'node:fs/promises';
import { PetrelError } from '../errors.js';

const GIB = 1 << 30;

/** The free space a download leaves on its file system, unless configured: 1% of it, at most 1 GiB. */
export function defaultReserve(totalBytes: number): number {
  return Math.min(GIB, Math.floor(totalBytes / 100));
}

export interface SpaceCheck {
  /** Space this user may still write (statfs f_bavail). */
  available: number;
  reserve: number;
}

/** What the file system holding `path` has left, and the reserve a download must leave it. */
export async function spaceAt(path: string, reserveBytes?: number): Promise<SpaceCheck> {
  const st = await statfs(path);
  return { available: st.bavail * st.bsize, reserve: reserveBytes ?? defaultReserve(st.blocks * st.bsize) };
}

const mib = (n: number) => `${(n / (1 << 20)).toFixed(n < 10 << 20 ? 1 : 0)} MiB`;

export function diskFull(path: string, need: number | undefined, space: SpaceCheck): PetrelError {
  const what = need === undefined ? '' : `${mib(need)} more needed, `;
  return new PetrelError('TRANSFER_DISK_FULL', `not enough space for ${path}: ${what}${mib(space.available)} free, ${mib(space.reserve)} kept in reserve`, {
    hint: 'free some space (or lower diskReserveBytes in config.json) and run `petrel job retry <id>`',
  });
}

/** Fails when writing `need` more bytes at `path` would eat into the reserve; else what it found. */
export async function ensureRoom(path: string, need: number, reserveBytes?: number): Promise<SpaceCheck> {
  const space = await spaceAt(path, reserveBytes);
  if (space.available - need < space.reserve) throw diskFull(path, need, space);
  return space;
}
