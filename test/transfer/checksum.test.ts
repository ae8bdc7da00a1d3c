import { createHash, randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { describe, it, expect } from 'vitest';
import {
  CHECKSUM_ALGORITHMS,
  adler32,
  checksumOf,
  crc32c,
  createChecksummer,
  isChecksumAlgorithm,
  type ChecksumAlgorithm,
} from '../../src/transfer/checksum.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

// deflate's zlib stream ends with the big-endian adler32 of its input.
function zlibAdler32(data: Uint8Array): string {
  const z = deflateSync(data, { level: 0 });
  return Buffer.from(z.subarray(z.length - 4)).toString('hex');
}

// Bit-at-a-time CRC-32C, as an independent reference for the table-driven one.
function referenceCrc32c(data: Uint8Array): string {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ((crc ^ 0xffffffff) >>> 0).toString(16).padStart(8, '0');
}

// Deterministic PRNG so that a failing chunking can be reproduced.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function digestInChunks(algo: ChecksumAlgorithm, data: Uint8Array, random: () => number, maxChunk: number): string {
  const c = createChecksummer(algo);
  let off = 0;
  while (off < data.length) {
    const len = Math.floor(random() * (maxChunk + 1));
    c.update(data.subarray(off, off + len));
    off += len;
  }
  return c.digest();
}

describe('CHECKSUM_ALGORITHMS', () => {
  it('lists adler32, md5 and crc32c', () => {
    expect([...CHECKSUM_ALGORITHMS]).toEqual(['adler32', 'md5', 'crc32c']);
  });

  it('recognises supported names only', () => {
    expect(isChecksumAlgorithm('crc32c')).toBe(true);
    expect(isChecksumAlgorithm('crc32')).toBe(false);
    expect(isChecksumAlgorithm('ADLER32')).toBe(false);
  });
});

describe('createChecksummer', () => {
  it('rejects an unknown algorithm', () => {
    expect(() => createChecksummer('sha1' as ChecksumAlgorithm)).toThrow(TypeError);
  });

  it.each(CHECKSUM_ALGORITHMS)('%s: digest() can be called repeatedly and updates may follow', (algo) => {
    const c = createChecksummer(algo);
    c.update(ascii('Wiki'));
    const partial = c.digest();
    expect(c.digest()).toBe(partial);
    c.update(ascii('pedia'));
    expect(c.digest()).toBe(checksumOf(algo, ascii('Wikipedia')));
  });

  it.each(CHECKSUM_ALGORITHMS)('%s: random chunkings give the one-shot result', (algo) => {
    const random = prng(42);
    const data = randomBytes(300_000 + 3);
    const unaligned = data.subarray(3);
    const oneShot = checksumOf(algo, unaligned);
    for (const maxChunk of [1, 7, 100, 5000, 70_000]) {
      expect(digestInChunks(algo, unaligned, random, maxChunk)).toBe(oneShot);
    }
  });

  it.each(CHECKSUM_ALGORITHMS)('%s: empty updates change nothing', (algo) => {
    const c = createChecksummer(algo);
    c.update(new Uint8Array(0));
    c.update(ascii('123456789'));
    c.update(new Uint8Array(0));
    expect(c.digest()).toBe(checksumOf(algo, ascii('123456789')));
  });
});

describe('adler32', () => {
  it('of "Wikipedia" is 11e60398', () => {
    expect(checksumOf('adler32', ascii('Wikipedia'))).toBe('11e60398');
  });

  it('of the empty input is 00000001', () => {
    expect(checksumOf('adler32', new Uint8Array(0))).toBe('00000001');
  });

  it('keeps leading zeros in the digest', () => {
    expect(checksumOf('adler32', new Uint8Array([0]))).toBe('00010001');
  });

  it('matches zlib for random buffers of many sizes and alignments', () => {
    const data = randomBytes((5 << 20) + 8);
    for (const size of [1, 63, 64, 127, 128, 129, 1000, 5552, 65_536 + 17, 1 << 20, 5 << 20]) {
      for (const offset of [0, 1, 2, 3]) {
        const slice = data.subarray(offset, offset + size);
        expect(checksumOf('adler32', slice), `size ${size} offset ${offset}`).toBe(zlibAdler32(slice));
      }
    }
  });

  it('matches zlib for all-0xff input, where the sums grow fastest', () => {
    const data = new Uint8Array((3 << 20) + 5).fill(0xff);
    expect(checksumOf('adler32', data)).toBe(zlibAdler32(data));
    expect(checksumOf('adler32', data.subarray(1))).toBe(zlibAdler32(data.subarray(1)));
  });

  it('continues from a previous value like zlib', () => {
    const data = randomBytes(10_000);
    expect(adler32(data.subarray(4321), adler32(data.subarray(0, 4321)))).toBe(adler32(data));
  });
});

describe('crc32c', () => {
  it('of "123456789" is e3069283', () => {
    expect(checksumOf('crc32c', ascii('123456789'))).toBe('e3069283');
  });

  it('of the empty input is 00000000', () => {
    expect(checksumOf('crc32c', new Uint8Array(0))).toBe('00000000');
  });

  it('matches the RFC 3720 test vectors', () => {
    const up = Uint8Array.from({ length: 32 }, (_, i) => i);
    const down = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
    expect(checksumOf('crc32c', new Uint8Array(32))).toBe('8a9136aa');
    expect(checksumOf('crc32c', new Uint8Array(32).fill(0xff))).toBe('62a8ab43');
    expect(checksumOf('crc32c', up)).toBe('46dd794e');
    expect(checksumOf('crc32c', down)).toBe('113fdb5c');
  });

  it('matches a bitwise reference for random buffers of many sizes and alignments', () => {
    const data = randomBytes(200_000 + 8);
    for (const size of [1, 15, 16, 17, 63, 64, 65, 1000, 200_000]) {
      for (const offset of [0, 1, 2, 3]) {
        const slice = data.subarray(offset, offset + size);
        expect(checksumOf('crc32c', slice), `size ${size} offset ${offset}`).toBe(referenceCrc32c(slice));
      }
    }
  });

  it('continues from a previous value like zlib', () => {
    const data = randomBytes(10_000);
    expect(crc32c(data.subarray(4321), crc32c(data.subarray(0, 4321)))).toBe(crc32c(data));
  });
});

describe('md5', () => {
  it('of the empty input is d41d8cd98f00b204e9800998ecf8427e', () => {
    expect(checksumOf('md5', new Uint8Array(0))).toBe('d41d8cd98f00b204e9800998ecf8427e');
  });

  it('is 32 lowercase hex digits', () => {
    expect(checksumOf('md5', ascii('The quick brown fox jumps over the lazy dog'))).toBe(
      '9e107d9d372bb6826bd81d3542a419d6',
    );
  });

  it('matches node:crypto for a large buffer', () => {
    const data = randomBytes(3 << 20);
    expect(checksumOf('md5', data)).toBe(createHash('md5').update(data).digest('hex'));
  });
});
