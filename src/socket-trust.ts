import { lstatSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { PetrelError } from './errors.js';

/**
 * Whether the agent's socket may be trusted, as ssh-agent and gpg-agent decide it: whoever can
 * write to its directory can put their own socket there and receive the wallet password and job
 * tokens the CLI sends. The agent checks before it listens, the CLI before every request.
 */

const uid = (): number | undefined => process.getuid?.();

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(3, '0');

function unsafe(message: string, hint: string): PetrelError {
  return new PetrelError('AGENT_SOCKET_UNSAFE', message, { hint });
}

/**
 * The socket's directory must be a real directory (not a link), owned by this user, with no
 * permission for group or others. A missing one is fine: the agent makes it 0700.
 */
export function checkSocketDirectory(dir: string): void {
  const st = lstatOrUndefined(dir);
  if (!st) return;
  const me = uid();
  const elsewhere = 'set XDG_RUNTIME_DIR (or PETREL_SOCKET) to a directory only you can use';
  if (st.isSymbolicLink()) throw unsafe(`the socket directory ${dir} is a symbolic link, which anyone who made it could point elsewhere`, `remove it if you did not make it, or ${elsewhere}`);
  // Not a directory at all: nothing can listen there, and connecting (or the agent's mkdir) says so.
  if (!st.isDirectory()) return;
  if (me !== undefined && st.uid !== me) {
    throw unsafe(`the socket directory ${dir} belongs to user ${st.uid}, not to you (${me}): whoever owns it could intercept what petrel sends the agent`, `have it removed, or ${elsewhere}`);
  }
  if (st.mode & 0o077) {
    throw unsafe(`the socket directory ${dir} may be used by others (mode ${octal(st.mode)}): anyone who can write there could replace the agent's socket`, `run \`chmod 700 ${dir}\` if only you have used it, or remove it`);
  }
}

/** The socket itself, if there: a socket this user owns, in a directory checkSocketDirectory trusts. */
export function checkSocket(path: string): void {
  checkSocketDirectory(dirname(path));
  const st = lstatOrUndefined(path);
  if (!st) return;
  const me = uid();
  if (!st.isSocket()) throw unsafe(`${path} is not a socket`, 'remove it, then run `petrel agent start`');
  if (me !== undefined && st.uid !== me) {
    throw unsafe(`the agent socket ${path} belongs to user ${st.uid}, not to you (${me}): petrel will not send it anything`, 'remove it, then run `petrel agent start`');
  }
}
