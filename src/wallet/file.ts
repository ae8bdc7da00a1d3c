import { randomBytes } from 'node:crypto';
import { constants, lstatSync } from 'node:fs';
import { mkdir, open as openFile, readlink, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { renameDurably } from '../durable.js';
import { PetrelError } from '../errors.js';
import { emptyContents, WalletContents } from './contents.js';
import { deriveKey, open, parseEnvelope, seal, type KdfParams, type WalletKey } from './envelope.js';

const LOCK_OPTIONS = {
  // The wallet may not exist yet (init), and a symlinked config dir must not move the lock.
  realpath: false,
  stale: 10_000,
  // Longer than a token renewal may hold the lock (discovery and refresh, 30 s each).
  retries: { retries: 400, factor: 1.2, minTimeout: 10, maxTimeout: 250, randomize: true },
};

async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(path, {
      ...LOCK_OPTIONS,
      // A lock found stale mid-write is reported, not thrown from a timer where nothing can catch it.
      onCompromised: () => undefined,
    });
  } catch (e) {
    throw new PetrelError('WALLET_BUSY', `the wallet ${path} stays locked by another petrel process`, {
      hint: `if no petrel process has run for a minute, remove ${path}.lock`,
      cause: e,
      transient: true,
    });
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = constants;

/** Is there anything at the wallet's path (a link included, so that opening it says what it is)? */
export function walletPresent(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function unsafe(path: string, what: string, hint: string): PetrelError {
  return new PetrelError('WALLET_UNSAFE', `the wallet ${path} ${what}`, { hint });
}

/**
 * Reads the wallet file, refusing one others could read or replace, as ssh refuses a private key
 * with loose permissions: never through a symbolic link, a regular file of this user's, mode 0600.
 */
async function readText(path: string): Promise<string> {
  let fh;
  try {
    fh = await openFile(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new PetrelError('WALLET_NOT_INITIALIZED', `there is no wallet at ${path}`, { hint: 'create one with `petrel wallet init`' });
    }
    if (code === 'ELOOP') {
      const target = await readlink(path).catch(() => '?');
      throw unsafe(path, `is a symbolic link (to ${target}); petrel reads its wallet only from a regular file`, `replace the link by the file itself: \`mv ${target} ${path}\``);
    }
    throw new PetrelError('WALLET_IO', `cannot read the wallet ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    const me = process.getuid?.();
    if (!st.isFile()) throw unsafe(path, 'is not a regular file', `remove it, or set XDG_CONFIG_HOME to where your wallet is`);
    if (me !== undefined && st.uid !== me) throw unsafe(path, `belongs to user ${st.uid}, not to you (${me})`, 'a wallet must be your own: remove it and make one with `petrel wallet init`');
    if (st.mode & 0o077) {
      throw unsafe(path, `may be read or changed by others (mode ${(st.mode & 0o777).toString(8)})`, `if only you have had access, run \`chmod 600 ${path}\`; else change its password (\`petrel wallet passwd\`) after that`);
    }
    return await fh.readFile('utf8');
  } catch (e) {
    if (e instanceof PetrelError) throw e;
    throw new PetrelError('WALLET_IO', `cannot read the wallet ${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    await fh.close();
  }
}

/** Write-to-temp, fsync, rename, fsync the directory: a crash leaves the old file or the new one. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await openFile(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await renameDurably(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new PetrelError('WALLET_IO', `cannot write the wallet ${path}: ${(e as Error).message}`, { cause: e });
  }
}

function decode(plain: Buffer, path: string): WalletContents {
  const parsed = WalletContents.safeParse(JSON.parse(plain.toString('utf8')));
  if (!parsed.success) throw new PetrelError('WALLET_CORRUPT', `the wallet ${path} decrypts, but its contents are not understood`, { hint: 'upgrade petrel' });
  return parsed.data;
}

/** Reads and decrypts with a key derived earlier; a key from before a password change fails. */
export async function readWallet(path: string, key: WalletKey): Promise<WalletContents> {
  const own = Buffer.from(key.key);
  const envelope = parseEnvelope(await readText(path), path);
  if (envelope.kdf.salt !== key.kdf.salt) {
    // A waiting code, not a failure: transfers go on once the wallet is opened with the new password.
    throw new PetrelError('WALLET_CLOSED', 'the wallet password was changed since the wallet was opened', { hint: 'open it again: `petrel wallet open`' });
  }
  try {
    return decode(open(envelope, { ...key, key: own }), path);
  } finally {
    own.fill(0);
  }
}

/** Derives the key from the password with the file's own KDF parameters, and decrypts. */
export async function unlockWallet(path: string, password: string): Promise<{ key: WalletKey; contents: WalletContents }> {
  const envelope = parseEnvelope(await readText(path), path);
  const key = await deriveKey(password, envelope.kdf);
  return { key, contents: decode(open(envelope, key), path) };
}

/** Creates a new, empty wallet (0600); refuses to replace one. */
export async function initWallet(path: string, password: string, kdf?: Omit<KdfParams, 'name' | 'salt'>): Promise<WalletKey> {
  const key = await deriveKey(password, kdf);
  await withLock(path, async () => {
    if (walletPresent(path)) {
      throw new PetrelError('WALLET_EXISTS', `a wallet already exists at ${path}`, { hint: 'open it with `petrel wallet open`, or change its password with `petrel wallet passwd`' });
    }
    await writeAtomically(path, JSON.stringify(seal(Buffer.from(JSON.stringify(emptyContents())), key)));
  });
  return key;
}

/**
 * The one way to change a wallet: under the file lock, re-read and decrypt, let `fn` look at the
 * freshest contents and change them (it may call out, e.g. to refresh a token, while the lock
 * keeps other writers waiting), then encrypt with a fresh nonce and replace the file atomically,
 * unless `fn` says nothing changed. Writers of different entries never undo each other.
 */
export async function transactWallet<T>(path: string, key: WalletKey, fn: (c: WalletContents) => Promise<{ result: T; changed: boolean }>): Promise<T> {
  // Our own copy of the key: closing the wallet zeroes the session's buffer, and a write in
  // flight must not then encrypt under zeros.
  const own: WalletKey = { ...key, key: Buffer.from(key.key) };
  try {
    return await withLock(path, async () => {
      const contents = await readWallet(path, own);
      const { result, changed } = await fn(contents);
      if (changed) await writeAtomically(path, JSON.stringify(seal(Buffer.from(JSON.stringify(contents)), own)));
      return result;
    });
  } finally {
    own.key.fill(0);
  }
}

/** Applies `change` to the freshest contents under the lock (see transactWallet). */
export async function updateWallet(path: string, key: WalletKey, change: (c: WalletContents) => void): Promise<WalletContents> {
  return transactWallet(path, key, async (contents) => {
    change(contents);
    return { result: contents, changed: true };
  });
}

/** Re-encrypts under a new password (new salt); returns the new key. */
export async function rekeyWallet(path: string, oldPassword: string, newPassword: string): Promise<WalletKey> {
  return withLock(path, async () => {
    const { contents } = await unlockWallet(path, oldPassword);
    const key = await deriveKey(newPassword);
    await writeAtomically(path, JSON.stringify(seal(Buffer.from(JSON.stringify(contents)), key)));
    return key;
  });
}
