import { describe, expect, it } from 'vitest';
import { ndjsonLines } from '../../agent/ndjson.js';
import type { PetrelError } from '../../src/errors.js';

async function* chunks(...parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield typeof p === 'string' ? new TextEncoder().encode(p) : p;
}

async function all(body: AsyncIterable<Uint8Array>) {
  const out = [];
  for await (const l of ndjsonLines(body)) out.push(l);
  return out;
}

describe('ndjsonLines', () => {
  it('splits values at newlines wherever the chunks break, numbering lines as an editor does', async () => {
    const euro = new TextEncoder().encode('{"p":"€"}\n'); // a character of three bytes, cut in two below
    const lines = await all(chunks('{"a":', '1}\n\n{"b"', ':2}\n', euro.subarray(0, 7), euro.subarray(7), '{"c":3}'));
    expect(lines).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 3, value: { b: 2 } },
      { line: 4, value: { p: '€' } },
      { line: 5, value: { c: 3 } },
    ]);
  });

  it('names the line that is not JSON', async () => {
    const err = (await all(chunks('{"a":1}\n{"b":\n{"c":3}\n')).catch((e: unknown) => e)) as PetrelError;
    expect(err.code).toBe('API_BAD_REQUEST');
    expect(err.message).toBe('line 2: not JSON');
  });

  it('refuses a body over its limit as it comes, with 413', async () => {
    const lines: string[] = [];
    const body = async function* () {
      for (let i = 0; i < 100; i++) yield new TextEncoder().encode(`{"n":"${String(i).padStart(3, '0')}"}\n`); // 12 bytes a line
    };
    const err = await (async () => {
      for await (const l of ndjsonLines(body(), 55)) lines.push(JSON.stringify(l.value));
    })().catch((e: unknown) => e as PetrelError);
    expect(err).toMatchObject({ code: 'API_PAYLOAD_TOO_LARGE', status: 413 });
    expect(lines).toHaveLength(4);
  });

  it('refuses bytes that are not UTF-8', async () => {
    const err = (await all(chunks('{"a":1}\n', new Uint8Array([0x7b, 0xff, 0x7d]))).catch((e: unknown) => e)) as PetrelError;
    expect(err.message).toBe('line 2: not UTF-8');
  });
});
