import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { z } from 'zod';
import { PetrelError } from '../errors.js';

export const WALLET_FORMAT = 'petrel-wallet';
export const WALLET_VERSION = 1;

const KdfParams = z.object({
  name: z.literal('scrypt'),
  N: z.number().int().min(1024),
  r: z.number().int().min(1),
  p: z.number().int().min(1),
  salt: z.string().min(16),
});
export type KdfParams = z.infer<typeof KdfParams>;

/** What is on disk: JSON, with everything but the format's own fields encrypted. */
export const Envelope = z.object({
  format: z.literal(WALLET_FORMAT),
  version: z.literal(WALLET_VERSION),
  kdf: KdfParams,
  cipher: z.object({ name: z.literal('aes-256-gcm'), nonce: z.string(), tag: z.string() }),
  ciphertext: z.string(),
});
export type Envelope = z.infer<typeof Envelope>;

/** scrypt cost: about 0.4 s on a 2-core machine of 2026; 128 MiB of memory. */
export const DEFAULT_KDF = { N: 2 ** 17, r: 8, p: 1 } as const;

/** A key derived from the password, with the parameters that derived it. */
export interface WalletKey {
  key: Buffer;
  kdf: KdfParams;
}

function scrypt(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password.normalize('NFKC'), salt, 32, { ...opts, maxmem: 128 * opts.N! * opts.r! * 2 }, (e, key) => (e ? reject(e) : resolve(key))),
  );
}

export async function deriveKey(password: string, kdf: Omit<KdfParams, 'name' | 'salt'> & { salt?: string } = DEFAULT_KDF): Promise<WalletKey> {
  const salt = kdf.salt ?? randomBytes(16).toString('base64');
  const params: KdfParams = { name: 'scrypt', N: kdf.N, r: kdf.r, p: kdf.p, salt };
  return { key: await scrypt(password, Buffer.from(salt, 'base64'), { N: kdf.N, r: kdf.r, p: kdf.p }), kdf: params };
}

/** The envelope's own fields are authenticated too: a tampered KDF cannot pass. */
function aad(kdf: KdfParams): Buffer {
  return Buffer.from(JSON.stringify({ format: WALLET_FORMAT, version: WALLET_VERSION, kdf }));
}

export function seal(plaintext: Buffer, key: WalletKey): Envelope {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.key, nonce);
  cipher.setAAD(aad(key.kdf));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    format: WALLET_FORMAT,
    version: WALLET_VERSION,
    kdf: key.kdf,
    cipher: { name: 'aes-256-gcm', nonce: nonce.toString('base64'), tag: cipher.getAuthTag().toString('base64') },
    ciphertext: ciphertext.toString('base64'),
  };
}

/** Decrypts; a wrong key and a tampered file look the same to AES-GCM, and say so. */
export function open(envelope: Envelope, key: WalletKey): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(envelope.cipher.nonce, 'base64'));
    decipher.setAAD(aad(envelope.kdf));
    decipher.setAuthTag(Buffer.from(envelope.cipher.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(envelope.ciphertext, 'base64')), decipher.final()]);
  } catch {
    throw new PetrelError('WALLET_BAD_PASSWORD', 'wrong wallet password (or the wallet file was altered)', {
      hint: 'try again; `petrel wallet passwd` changes the password once you know it',
    });
  }
}

/** Parses the file's text, refusing anything that is not a wallet this version understands. */
export function parseEnvelope(text: string, path: string): Envelope {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new PetrelError('WALLET_CORRUPT', `the wallet ${path} is not valid JSON (truncated or damaged)`, {
      hint: `restore ${path} from a backup, or move it aside and run \`petrel wallet init\``,
    });
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if ((raw as { format?: unknown } | null)?.format === WALLET_FORMAT && typeof version === 'number' && version > WALLET_VERSION) {
    throw new PetrelError('WALLET_CORRUPT', `the wallet ${path} has format version ${version}, newer than this petrel understands`, { hint: 'upgrade petrel' });
  }
  const parsed = Envelope.safeParse(raw);
  if (!parsed.success) {
    throw new PetrelError('WALLET_CORRUPT', `${path} is not a petrel wallet (${parsed.error.issues[0]?.path.join('.') || 'format'} is wrong)`, {
      hint: `restore ${path} from a backup, or move it aside and run \`petrel wallet init\``,
    });
  }
  return parsed.data;
}
