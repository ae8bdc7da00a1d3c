import { randomBytes } from 'node:crypto';
import { constants, close, fstat, lstat, open, read, unlink, type Stats } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { PetrelError } from '../errors.js';
import type { Checksummer } from './checksum.js';
import { localError } from './errors.js';
import { PART_SUFFIX, partPath } from './task.js';

const openFd = promisify(open);
const fstatFd = promisify(fstat);
const lstatPath = promisify(lstat);
const closeFd = promisify(close);
const unlinkPath = promisify(unlink);
const readFd = promisify(read);

const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;
/** A new file, never through a link: O_EXCL fails on any existing name, a symlink included. */
const CREATE = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW;
/** An existing part file, not through a symlink; O_NONBLOCK so a planted FIFO cannot hang the open. */
const REOPEN = O_RDWR | O_NOFOLLOW | O_NONBLOCK;

/**
 * A download's part file, opened so that nothing another local user planted in the destination's
 * directory is written through: the descriptor is checked (fstat after open, not lstat before),
 * and the rename into place checks that it publishes this very file.
 */
export interface PartFile {
  fd: number;
  path: string;
  /** Bytes already there (a resumed download). */
  size: number;
  /** This attempt made the file: it goes again if the attempt fails before writing. */
  created: boolean;
  /**
   * The usual name was taken by something not ours to resume (a symlink, another user's file, a
   * hard link): this file has a name of its own, which no later attempt looks for.
   */
  private: boolean;
  /** The file's identity, to find it again after a rename. */
  dev: number;
  ino: number;
}

const uid = (): number | undefined => process.getuid?.();

async function createAt(path: string): Promise<number> {
  try {
    return await openFd(path, CREATE, 0o666);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  // The directory is made only when missing: not a syscall per file of a job.
  await mkdir(dirname(path), { recursive: true }).catch((e: unknown) => {
    throw localError(e, dirname(path), 'creating');
  });
  return openFd(path, CREATE, 0o666);
}

async function identity(fd: number, path: string, created: boolean, isPrivate: boolean): Promise<PartFile> {
  const st = await fstatFd(fd);
  return { fd, path, size: created ? 0 : st.size, created, private: isPrivate, dev: st.dev, ino: st.ino };
}

/** Ours to resume: a regular file of this user's with no other name (a hard link could point anywhere). */
function resumable(st: Stats): boolean {
  const me = uid();
  return st.isFile() && (me === undefined || st.uid === me) && st.nlink === 1;
}

/** Opens the existing part file if it is ours to resume, else undefined. */
async function reopen(path: string): Promise<number | undefined> {
  let fd: number;
  try {
    fd = await openFd(path, REOPEN);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ELOOP: a symlink. EACCES/EPERM: someone else's. ENXIO: a socket or FIFO.
    if (code === 'ELOOP' || code === 'EACCES' || code === 'EPERM' || code === 'ENXIO' || code === 'EISDIR') return undefined;
    if (code === 'ENOENT') return undefined;
    throw localError(e, path, 'opening');
  }
  const st = await fstatFd(fd).catch(async (e: unknown) => {
    await closeFd(fd).catch(() => undefined);
    throw localError(e, path, 'opening');
  });
  if (resumable(st)) return fd;
  await closeFd(fd).catch(() => undefined);
  return undefined;
}

/**
 * Opens `<dest>.petrel-part` for a download: created new, or an earlier attempt's file reopened
 * to resume it. When that name holds something else (a symlink to a victim, a file another user
 * owns, a hard link, a FIFO), the download starts fresh under a private name beside it.
 */
export async function openPartFile(destination: string): Promise<PartFile> {
  const path = partPath(destination);
  for (let tries = 0; tries < 2; tries++) {
    try {
      return await identity(await createAt(path), path, true, false);
    } catch (e) {
      if (e instanceof PetrelError) throw e;
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw localError(e, path, 'writing');
    }
    const fd = await reopen(path);
    if (fd !== undefined) return identity(fd, path, false, false);
    // Gone between the two opens (another attempt's cleanup): try creating it once more.
    const there = await lstatPath(path).then(() => true, () => false);
    if (there) break;
  }
  const own = join(dirname(path), `.${basename(destination)}.${randomBytes(6).toString('hex')}${PART_SUFFIX}`);
  try {
    return await identity(await openFd(own, CREATE, 0o666), own, true, true);
  } catch (e) {
    throw localError(e, own, 'writing');
  }
}

/** Feeds the part file's first `length` bytes to a checksum, read through its descriptor. */
export async function hashPart(part: PartFile, length: number, sum: Checksummer, signal: AbortSignal): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(length, 1)));
  for (let position = 0; position < length; ) {
    signal.throwIfAborted();
    const { bytesRead } = await readFd(part.fd, buf, 0, Math.min(buf.length, length - position), position);
    if (bytesRead === 0) throw new PetrelError('TRANSFER_LOCAL_IO', `${part.path} shrank while it was read`, { hint: 'run the transfer again' });
    sum.update(buf.subarray(0, bytesRead));
    position += bytesRead;
  }
}

async function sameFile(path: string, part: PartFile): Promise<boolean> {
  try {
    const st = await lstatPath(path);
    return st.isFile() && st.dev === part.dev && st.ino === part.ino;
  } catch {
    return false;
  }
}

const replaced = (path: string) =>
  new PetrelError('TRANSFER_LOCAL_IO', `${path} was replaced by someone else while it was written`, {
    hint: 'download into a directory only you can write to',
  });

/**
 * Renames the part file into place, checking before and after that the name holds this very
 * file: another user who can write to the directory may swap it for a symlink meanwhile, and a
 * symlink must never be published at the destination. Call while the descriptor is open.
 */
export async function publishPart(part: PartFile, destination: string, rename: (from: string, to: string) => Promise<void>): Promise<void> {
  if (!(await sameFile(part.path, part))) throw replaced(part.path);
  await rename(part.path, destination).catch((e: unknown) => {
    throw localError(e, destination, 'renaming into');
  });
  if (!(await sameFile(destination, part))) {
    // What landed there is not ours (unlink removes a link, never what it points to).
    await unlinkPath(destination).catch(() => undefined);
    throw replaced(destination);
  }
}

export async function closePart(part: PartFile): Promise<void> {
  await closeFd(part.fd).catch(() => undefined);
}

/** Removes the part file if its name still holds this file. */
export async function removePart(part: PartFile): Promise<void> {
  if (await sameFile(part.path, part)) await unlinkPath(part.path).catch(() => undefined);
}
