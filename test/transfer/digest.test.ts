import { describe, it, expect } from 'vitest';
import { CHECKSUM_ALGORITHMS } from '../../src/transfer/checksum.js';
import { parseDigestHeader, serverDigest, wantDigestHeader } from '../../src/transfer/digest.js';

describe('wantDigestHeader', () => {
  it.each(CHECKSUM_ALGORITHMS)('asks for %s by its RFC 3230 token', (algo) => {
    expect(wantDigestHeader(algo)).toBe(algo);
  });
});

describe('parseDigestHeader', () => {
  it('maps each algorithm to its raw value, keeping = padding', () => {
    const digests = parseDigestHeader('adler32=6895ba71, md5=Ec29LSR9bskI+H1iiDR84w==');
    expect([...digests]).toEqual([
      ['adler32', '6895ba71'],
      ['md5', 'Ec29LSR9bskI+H1iiDR84w=='],
    ]);
  });

  it('lower-cases names but not values', () => {
    expect(parseDigestHeader('CRC32C=NT3Yvg==').get('crc32c')).toBe('NT3Yvg==');
  });

  it('tolerates spaces around names, values and commas', () => {
    const digests = parseDigestHeader('  adler32 = 6895ba71 ,md5=Ec29LSR9bskI+H1iiDR84w== ,');
    expect(digests.get('adler32')).toBe('6895ba71');
    expect(digests.get('md5')).toBe('Ec29LSR9bskI+H1iiDR84w==');
    expect(digests.size).toBe(2);
  });

  it('merges repeated headers', () => {
    const digests = parseDigestHeader(['adler32=6895ba71', 'crc32c=NT3Yvg==']);
    expect(digests.get('adler32')).toBe('6895ba71');
    expect(digests.get('crc32c')).toBe('NT3Yvg==');
  });

  it('keeps the first value when an algorithm repeats', () => {
    expect(parseDigestHeader('adler32=00000001, adler32=6895ba71').get('adler32')).toBe('00000001');
  });

  it('ignores items without a value', () => {
    expect(parseDigestHeader('adler32, md5=, =abc').size).toBe(0);
  });

  it('returns an empty map when there is no header', () => {
    expect(parseDigestHeader(undefined).size).toBe(0);
    expect(parseDigestHeader('').size).toBe(0);
  });
});

describe('serverDigest', () => {
  it('returns XRootD adler32 hex as is', () => {
    expect(serverDigest('adler32=6895ba71', 'adler32')).toBe('6895ba71');
  });

  it('restores leading zeros a server dropped from adler32', () => {
    expect(serverDigest('adler32=5ba71', 'adler32')).toBe('0005ba71');
  });

  it('lower-cases hex adler32', () => {
    expect(serverDigest('ADLER32=6895BA71', 'adler32')).toBe('6895ba71');
  });

  it('decodes XRootD base64 md5 to hex', () => {
    expect(serverDigest('md5=Ec29LSR9bskI+H1iiDR84w==', 'md5')).toBe('11cdbd2d247d6ec908f87d6288347ce3');
  });

  it('accepts md5 as 32 hex digits', () => {
    expect(serverDigest('MD5=11CDBD2D247D6EC908F87D6288347CE3', 'md5')).toBe('11cdbd2d247d6ec908f87d6288347ce3');
  });

  it('decodes XRootD base64 crc32c to hex of its big-endian bytes', () => {
    expect(serverDigest('crc32c=NT3Yvg==', 'crc32c')).toBe('353dd8be');
  });

  it('accepts crc32c in hex', () => {
    expect(serverDigest('crc32c=353dd8be', 'crc32c')).toBe('353dd8be');
  });

  it('treats an 8-digit crc32c without padding as hex, not base64', () => {
    expect(serverDigest('crc32c=0000abcd', 'crc32c')).toBe('0000abcd');
  });

  it('matches algorithm names case-insensitively', () => {
    expect(serverDigest('CRC32C=NT3Yvg==', 'crc32c')).toBe('353dd8be');
  });

  it('picks the requested algorithm out of a list', () => {
    const header = 'adler32=6895ba71, md5=Ec29LSR9bskI+H1iiDR84w==, crc32c=NT3Yvg==';
    expect(serverDigest(header, 'adler32')).toBe('6895ba71');
    expect(serverDigest(header, 'md5')).toBe('11cdbd2d247d6ec908f87d6288347ce3');
    expect(serverDigest(header, 'crc32c')).toBe('353dd8be');
  });

  it('returns undefined when the server sent another algorithm', () => {
    expect(serverDigest('adler32=6895ba71', 'crc32c')).toBeUndefined();
  });

  it('returns undefined when there is no header', () => {
    expect(serverDigest(undefined, 'adler32')).toBeUndefined();
  });

  it('returns undefined for malformed values', () => {
    expect(serverDigest('adler32=6895ba71a', 'adler32')).toBeUndefined();
    expect(serverDigest('adler32=xyz', 'adler32')).toBeUndefined();
    expect(serverDigest('crc32c=NT3Yvg=', 'crc32c')).toBeUndefined();
    expect(serverDigest('md5=Ec29LSR9bskI', 'md5')).toBeUndefined();
    expect(serverDigest('md5=11cdbd2d247d6ec908f87d6288347c', 'md5')).toBeUndefined();
  });
});
