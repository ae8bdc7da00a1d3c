import { Transform } from 'node:stream';
import type { Checksummer } from './checksum.js';

/**
 * A pass-through that feeds every chunk to the checksum and counts bytes as they stream. `guard`
 * may refuse a chunk (throw) or hold it until a check is done (return a promise).
 */
export function createTap(sum: Checksummer | undefined, onBytes: (n: number) => void, guard?: (n: number) => Promise<void> | undefined): Transform {
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, done) {
      let pending: Promise<void> | undefined;
      try {
        pending = guard?.(chunk.length);
      } catch (e) {
        done(e as Error);
        return;
      }
      sum?.update(chunk);
      onBytes(chunk.length);
      if (pending) pending.then(() => done(null, chunk), (e: unknown) => done(e as Error));
      else done(null, chunk);
    },
  });
}
