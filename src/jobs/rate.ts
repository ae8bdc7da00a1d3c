/** Bytes per second over a sliding window of recent samples. */
export function createRateMeter(windowMs = 5_000, now: () => number = Date.now) {
  const samples: { at: number; bytes: number }[] = [];
  return {
    record(bytes: number): void {
      const at = now();
      const last = samples.at(-1);
      if (last && at - last.at < 200) {
        last.bytes = bytes;
        return;
      }
      samples.push({ at, bytes });
      while (samples.length > 2 && at - (samples[0]?.at ?? at) > windowMs) samples.shift();
    },
    rate(): number {
      const first = samples[0];
      const last = samples.at(-1);
      if (!first || !last || last.at === first.at) return 0;
      return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at));
    },
  };
}

export type RateMeter = ReturnType<typeof createRateMeter>;
