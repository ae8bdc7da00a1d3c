// RFC 3230 instance digests: `Want-Digest` requests and `Digest` responses.
import type { ChecksumAlgorithm } from './checksum.js';

/** The token to send as `Want-Digest` to ask for `algo`. */
export function wantDigestHeader(algo: ChecksumAlgorithm): string {
  return algo;
}

/**
 * Parses `Digest: adler32=6895ba71, md5=Ec29LSR9bskI+H1iiDR84w==` into lower-cased algorithm
 * names mapped to raw values. Values keep their `=` padding; the first occurrence of a name wins.
 */
export function parseDigestHeader(header: string | string[] | undefined): Map<string, string> {
  const digests = new Map<string, string>();
  if (header === undefined) return digests;
  for (const line of Array.isArray(header) ? header : [header]) {
    for (const item of line.split(',')) {
      const eq = item.indexOf('=');
      if (eq < 0) continue;
      const name = item.slice(0, eq).trim().toLowerCase();
      const value = unquote(item.slice(eq + 1).trim());
      if (name !== '' && value !== '' && !digests.has(name)) digests.set(name, value);
    }
  }
  return digests;
}

/**
 * The server's digest for `algo`, in the canonical form of Checksummer.digest(), or undefined
 * when the header has none for `algo` or the value is malformed.
 */
export function serverDigest(
  header: string | string[] | undefined,
  algo: ChecksumAlgorithm,
): string | undefined {
  const raw = parseDigestHeader(header).get(algo);
  if (raw === undefined) return undefined;
  return algo === 'md5' ? normaliseMd5(raw) : normalise32(raw);
}

const HEX_32BIT = /^[0-9a-fA-F]{1,8}$/;
const BASE64_32BIT = /^[A-Za-z0-9+/_-]{6}==$/;
const HEX_MD5 = /^[0-9a-fA-F]{32}$/;
const BASE64_MD5 = /^[A-Za-z0-9+/_-]{22}(==)?$/;

// adler32/crc32c: hex (XRootD's adler32, most servers' crc32c; leading zeros may be dropped) or
// base64 of the 4 big-endian bytes (XRootD's crc32c). Hex never contains '=', and base64 of
// 4 bytes always ends in '==', so the two cannot be confused.
function normalise32(raw: string): string | undefined {
  if (HEX_32BIT.test(raw)) return raw.toLowerCase().padStart(8, '0');
  if (BASE64_32BIT.test(raw)) return Buffer.from(raw, 'base64').toString('hex');
  return undefined;
}

// md5: base64 of the 16 bytes (RFC 3230, XRootD) or 32 hex digits.
function normaliseMd5(raw: string): string | undefined {
  if (HEX_MD5.test(raw)) return raw.toLowerCase();
  if (BASE64_MD5.test(raw)) return Buffer.from(raw, 'base64').toString('hex');
  return undefined;
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1).trim() : value;
}
