import { readFile } from 'node:fs/promises';
import { PetrelError } from '../../src/errors.js';

/** One secret (a token, a client secret) from a file, trimmed; unreadable or empty is an error naming the file. */
export async function readSecretFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (e) {
    throw new PetrelError('TOKEN_FILE_UNREADABLE', `cannot read the ${what} file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      hint: `pass a readable file holding one ${what}`,
    });
  }
  if (!text) throw new PetrelError('TOKEN_FILE_UNREADABLE', `the ${what} file ${path} is empty`, { hint: `pass a file holding one ${what}` });
  return text;
}
