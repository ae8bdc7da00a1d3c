import { createHash } from 'node:crypto';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from '../domain.js';

export { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm };

export function isChecksumAlgorithm(name: string): name is ChecksumAlgorithm {
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(name);
}

/** Incremental checksum over a byte stream. */
export interface Checksummer {
  update(chunk: Uint8Array): void;
  /**
   * Canonical form: adler32 and crc32c as 8 lowercase hex digits, md5 as 32 lowercase hex.
   * Does not end the stream: it may be called again, also after further updates.
   */
  digest(): string;
}

export function createChecksummer(algo: ChecksumAlgorithm): Checksummer {
  switch (algo) {
    case 'adler32': {
      let value = 1;
      return {
        update: (chunk) => { value = adler32(chunk, value); },
        digest: () => hex32(value),
      };
    }
    case 'crc32c': {
      let value = 0;
      return {
        update: (chunk) => { value = crc32c(chunk, value); },
        digest: () => hex32(value),
      };
    }
    case 'md5': {
      const hash = createHash('md5');
      return {
        update: (chunk) => { hash.update(chunk); },
        digest: () => hash.copy().digest('hex'),
      };
    }
    default:
      throw new TypeError(`unsupported checksum algorithm: ${String(algo satisfies never)}`);
  }
}

/** One-shot convenience: the canonical digest of `data`. */
export function checksumOf(algo: ChecksumAlgorithm, data: Uint8Array): string {
  const c = createChecksummer(algo);
  c.update(data);
  return c.digest();
}

function hex32(value: number): string {
  return value.toString(16).padStart(8, '0');
}

// The word-at-a-time paths below read through a Uint32Array view and assume its byte order.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------- adler32

const MOD = 65521;
// Bytes per scalar block before reducing: keeps b below 2^31 (int32 arithmetic is much faster
// in V8 than the doubles zlib's NMAX=5552 would need, since 5552 only fits in uint32).
const SCALAR_BLOCK = 3800;
// 16-word groups per reduction in the word path: a <= 65520 + 2048*255, b <= 65520 + 2048*a < 2^31.
const GROUPS_PER_REDUCTION = 32;

/** Updates an adler32 value (1 for the empty input) with `data`, like zlib's adler32(). */
export function adler32(data: Uint8Array, value = 1): number {
  const n = data.length;
  if (n < 128 || !LITTLE_ENDIAN) return adler32Scalar(value, data, 0, n);

  const head = (4 - (data.byteOffset & 3)) & 3;
  value = adler32Scalar(value, data, 0, head);
  let a = value & 0xffff;
  let b = value >>> 16;

  const groups = ((n - head) >>> 6); // 64-byte groups of 16 words
  const words = new Uint32Array(data.buffer, data.byteOffset + head, groups * 16);
  const M = 0x00ff00ff;
  let w = 0;
  let g = 0;
  while (g < groups) {
    const stop = Math.min(g + GROUPS_PER_REDUCTION, groups);
    for (; g < stop; g++, w += 16) {
      // SWAR: s02/s13 hold, in two 16-bit lanes each, the sums of bytes 0|2 and 1|3 of the words
      // seen so far in this group; p02/p13 the sums of s02/s13 before each word, which yield the
      // position weights b needs. Lanes stay below 2^16 (p <= 255 * 120) within one group.
      let s02 = 0, s13 = 0, p02 = 0, p13 = 0, x = 0;
      x = words[w]!; s02 = (x & M); s13 = ((x >>> 8) & M);
      x = words[w + 1]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 2]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 3]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 4]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 5]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 6]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 7]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 8]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 9]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 10]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 11]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 12]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 13]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 14]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      x = words[w + 15]!; p02 = (p02 + s02) | 0; p13 = (p13 + s13) | 0; s02 = (s02 + (x & M)) | 0; s13 = (s13 + ((x >>> 8) & M)) | 0;
      const c0 = s02 & 0xffff, c2 = s02 >>> 16, c1 = s13 & 0xffff, c3 = s13 >>> 16;
      const p = (p02 & 0xffff) + (p02 >>> 16) + (p13 & 0xffff) + (p13 >>> 16);
      // Byte k of word j is added to b (64 - 4j - k) times.
      b = (b + 64 * a + 4 * p + 4 * c0 + 3 * c1 + 2 * c2 + c3) | 0;
      a = (a + c0 + c1 + c2 + c3) | 0;
    }
    a %= MOD;
    b %= MOD;
  }
  return adler32Scalar(b * 65536 + a, data, head + groups * 64, n);
}

function adler32Scalar(value: number, data: Uint8Array, start: number, end: number): number {
  let a = value & 0xffff;
  let b = value >>> 16;
  let i = start;
  while (i < end) {
    const stop = Math.min(i + SCALAR_BLOCK, end);
    const stop8 = stop - ((stop - i) & 7);
    while (i < stop8) {
      a = (a + data[i]!) | 0; b = (b + a) | 0;
      a = (a + data[i + 1]!) | 0; b = (b + a) | 0;
      a = (a + data[i + 2]!) | 0; b = (b + a) | 0;
      a = (a + data[i + 3]!) | 0; b = (b + a) | 0;
      a = (a + data[i + 4]!) | 0; b = (b + a) | 0;
      a = (a + data[i + 5]!) | 0; b = (b + a) | 0;
      a = (a + data[i + 6]!) | 0; b = (b + a) | 0;
      a = (a + data[i + 7]!) | 0; b = (b + a) | 0;
      i += 8;
    }
    for (; i < stop; i++) { a = (a + data[i]!) | 0; b = (b + a) | 0; }
    a %= MOD;
    b %= MOD;
  }
  return b * 65536 + a;
}

// ---------------------------------------------------------------- crc32c

// Slice-by-16 tables for CRC-32C (Castagnoli), reflected polynomial 0x82F63B78:
// T[k*256 + n] is the CRC of byte n followed by k zero bytes.
const T = new Int32Array(16 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = T[n]!;
  for (let k = 1; k < 16; k++) {
    c = T[c & 255]! ^ (c >>> 8);
    T[k * 256 + n] = c;
  }
}

/** Updates a crc32c value (0 for the empty input) with `data`, like zlib's crc32(). */
export function crc32c(data: Uint8Array, value = 0): number {
  const n = data.length;
  let crc = ~value;
  if (n < 64 || !LITTLE_ENDIAN) return ~crc32cBytes(crc, data, 0, n) >>> 0;

  const head = (4 - (data.byteOffset & 3)) & 3;
  crc = crc32cBytes(crc, data, 0, head);
  const blocks = (n - head) >>> 4;
  const words = new Uint32Array(data.buffer, data.byteOffset + head, blocks * 4);
  for (let j = 0; j < words.length; j += 4) {
    const w0 = crc ^ words[j]!, w1 = words[j + 1]!, w2 = words[j + 2]!, w3 = words[j + 3]!;
    crc = T[3840 + (w0 & 255)]! ^ T[3584 + ((w0 >>> 8) & 255)]! ^ T[3328 + ((w0 >>> 16) & 255)]! ^ T[3072 + (w0 >>> 24)]!
      ^ T[2816 + (w1 & 255)]! ^ T[2560 + ((w1 >>> 8) & 255)]! ^ T[2304 + ((w1 >>> 16) & 255)]! ^ T[2048 + (w1 >>> 24)]!
      ^ T[1792 + (w2 & 255)]! ^ T[1536 + ((w2 >>> 8) & 255)]! ^ T[1280 + ((w2 >>> 16) & 255)]! ^ T[1024 + (w2 >>> 24)]!
      ^ T[768 + (w3 & 255)]! ^ T[512 + ((w3 >>> 8) & 255)]! ^ T[256 + ((w3 >>> 16) & 255)]! ^ T[w3 >>> 24]!;
  }
  return ~crc32cBytes(crc, data, head + blocks * 16, n) >>> 0;
}

function crc32cBytes(crc: number, data: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) crc = T[(crc ^ data[i]!) & 255]! ^ (crc >>> 8);
  return crc;
}

// ---------------------------------------------------------------- combining

/** The algorithms whose digests of consecutive pieces combine into the digest of the whole. */
export function isCombinable(algo: ChecksumAlgorithm): algo is 'adler32' | 'crc32c' {
  return algo === 'adler32' || algo === 'crc32c';
}

/**
 * The digest of `a`'s bytes followed by `b`'s, from their digests and `b`'s length (zlib's
 * adler32_combine and crc32_combine): a download fetched in ranges checksums each range apart.
 */
export function combineDigests(algo: 'adler32' | 'crc32c', first: string, second: string, secondLength: number): string {
  const a = Number.parseInt(first, 16);
  const b = Number.parseInt(second, 16);
  return hex32(algo === 'adler32' ? adler32Combine(a, b, secondLength) : crc32cCombine(a, b, secondLength));
}

function adler32Combine(first: number, second: number, length: number): number {
  const rem = length % MOD;
  let sum1 = first & 0xffff;
  let sum2 = (rem * sum1) % MOD;
  sum1 += (second & 0xffff) + MOD - 1;
  sum2 += (first >>> 16) + (second >>> 16) + MOD - rem;
  if (sum1 >= MOD) sum1 -= MOD;
  if (sum1 >= MOD) sum1 -= MOD;
  if (sum2 >= 2 * MOD) sum2 -= 2 * MOD;
  if (sum2 >= MOD) sum2 -= MOD;
  return sum2 * 65536 + sum1;
}

/** vec times the 32×32 matrix over GF(2) whose columns are `mat`. */
function gf2Times(mat: Uint32Array, vec: number): number {
  let sum = 0;
  for (let i = 0; vec !== 0; i++, vec >>>= 1) if (vec & 1) sum ^= mat[i]!;
  return sum >>> 0;
}

function gf2Square(square: Uint32Array, mat: Uint32Array): void {
  for (let n = 0; n < 32; n++) square[n] = gf2Times(mat, mat[n]!);
}

/** Applies `length` zero bytes to crc `first` by repeated squaring of the one-zero-bit operator, then adds `second`. */
function crc32cCombine(first: number, second: number, length: number): number {
  if (length <= 0) return first;
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = 0x82f63b78;
  for (let n = 1, row = 1; n < 32; n++, row <<= 1) odd[n] = row;
  gf2Square(even, odd); // two zero bits
  gf2Square(odd, even); // four
  let crc = first;
  let left = length;
  for (;;) {
    gf2Square(even, odd);
    if (left % 2) crc = gf2Times(even, crc);
    left = Math.floor(left / 2);
    if (left === 0) break;
    gf2Square(odd, even);
    if (left % 2) crc = gf2Times(odd, crc);
    left = Math.floor(left / 2);
    if (left === 0) break;
  }
  return (crc ^ second) >>> 0;
}
