// Checksum throughput: node dist/bench/checksum.js [MiB] (default 256).
import { randomFillSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { createAdler32, createCRC32, type IHasher } from 'hash-wasm';
import * as zlib from 'node:zlib';
import { CHECKSUM_ALGORITHMS } from '../src/domain.js';
import { createChecksummer } from '../src/transfer/index.js';

const CHUNK_SIZES = [4 << 20, 64 << 10];
const ROUNDS = 3;

export interface ChecksumBenchResult {
  name: string;
  chunkSize: number;
  gbPerSecond: number;
}

function timeBest(data: Uint8Array, chunkSize: number, run: (chunk: Uint8Array) => void): number {
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint();
    for (let off = 0; off < data.length; off += chunkSize) run(data.subarray(off, off + chunkSize));
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return data.length / best / 1e9;
}

export async function runChecksumBench(sizeMiB = 256, log: (line: string) => void = console.log): Promise<ChecksumBenchResult[]> {
  const data = randomFillSync(new Uint8Array(sizeMiB << 20));
  const results: ChecksumBenchResult[] = [];
  const report = (name: string, chunkSize: number, gbPerSecond: number): void => {
    results.push({ name, chunkSize, gbPerSecond });
    log(`${name.padEnd(14)} ${`${chunkSize >> 10} KiB`.padStart(9)} chunks  ${gbPerSecond.toFixed(2)} GB/s`);
  };

  log(`checksums over ${sizeMiB} MiB, best of ${ROUNDS}, node ${process.version}`);
  for (const algo of CHECKSUM_ALGORITHMS) {
    for (const chunkSize of CHUNK_SIZES) {
      const c = createChecksummer(algo);
      report(algo, chunkSize, timeBest(data, chunkSize, (chunk) => c.update(chunk)));
    }
  }

  // Native reference where available: zlib.crc32 (Node 20.15+/22.2+) computes crc32, not crc32c.
  const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
  if (nativeCrc32 !== undefined) {
    for (const chunkSize of CHUNK_SIZES) {
      let value = 0;
      report('zlib.crc32', chunkSize, timeBest(data, chunkSize, (chunk) => { value = nativeCrc32(chunk, value); }));
    }
  } else {
    log('zlib.crc32     not available in this Node version (native reference skipped)');
  }

  // WebAssembly (hash-wasm), the alternative the performance issue asked to weigh.
  const wasm: [string, () => Promise<IHasher>][] = [
    ['wasm adler32', () => createAdler32()],
    ['wasm crc32c', () => createCRC32(0x82f63b78)],
  ];
  for (const [name, create] of wasm) {
    for (const chunkSize of CHUNK_SIZES) {
      const h = await create();
      report(name, chunkSize, timeBest(data, chunkSize, (chunk) => h.update(chunk)));
    }
  }
  return results;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = process.argv[2];
  await runChecksumBench(arg === undefined ? 256 : Number(arg));
}
