/**
 * The body of an HTTP-TPC COPY reply (protocols.md §1): perf-marker blocks while the copy runs,
 * then exactly one final line (`success: …`, or `failure: …` / `failed: …` / `aborted: …`),
 * possibly without a trailing newline. Fed chunk by chunk: a marker or a line may be split
 * anywhere, even inside a multi-byte character.
 */
export type MarkerEvent =
  | { type: 'progress'; bytes: number }
  | { type: 'final'; ok: boolean; text: string };

const FINAL = /^(success|failure|failed|aborted)\s*:?\s*(.*)$/i;

export function createMarkerParser() {
  const decoder = new TextDecoder();
  let pending = '';
  let inMarker = false;
  let stripes = new Map<number, number>();
  let stripe = 0;
  let final: MarkerEvent | undefined;

  function line(raw: string, out: MarkerEvent[]): void {
    const text = raw.trim();
    if (!text || final) return;
    if (/^perf marker$/i.test(text)) {
      inMarker = true;
      stripe = 0;
      return;
    }
    if (inMarker) {
      const [key, ...rest] = text.split(':');
      const value = rest.join(':').trim();
      switch (key?.trim().toLowerCase()) {
        case 'stripe index':
          stripe = Number(value) || 0;
          break;
        case 'stripe bytes transferred':
          if (/^\d+$/.test(value)) stripes.set(stripe, Number(value));
          break;
        case 'end':
          inMarker = false;
          out.push({ type: 'progress', bytes: [...stripes.values()].reduce((a, b) => a + b, 0) });
          break;
      }
      return;
    }
    const m = FINAL.exec(text);
    if (m) final = { type: 'final', ok: (m[1] as string).toLowerCase() === 'success', text };
    if (final) out.push(final);
  }

  return {
    /** Parses what arrived; returns the events it completed. */
    feed(chunk: Uint8Array | string): MarkerEvent[] {
      pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
      const out: MarkerEvent[] = [];
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        line(pending.slice(0, nl), out);
        pending = pending.slice(nl + 1);
      }
      return out;
    },

    /** The body ended: the last line may lack its newline. Undefined when no final line came. */
    end(): MarkerEvent | undefined {
      const out: MarkerEvent[] = [];
      line(pending + decoder.decode(), out);
      pending = '';
      return final;
    },

    reset(): void {
      pending = '';
      inMarker = false;
      stripes = new Map();
      final = undefined;
    },
  };
}

export type MarkerParser = ReturnType<typeof createMarkerParser>;
