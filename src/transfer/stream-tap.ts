import { Transform } from 'node:stream';
import type { Checksummer } from './checksum.js';

/** A pass-through that feeds every chunk to the checksum and counts bytes as they stream. */
export function createTap(sum: Checksummer | undefined, onBytes: (n: number) => void): Transform {
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, done) {
      sum?.update(chunk);
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}
