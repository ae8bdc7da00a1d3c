import { PetrelError } from '../src/errors.js';

export interface NdjsonLine {
  /** 1-based, as an editor counts. */
  line: number;
  value: unknown;
}

const badLine = (line: number, why: string) => new PetrelError('API_BAD_REQUEST', `line ${line}: ${why}`, { hint: 'send one JSON value per line (NDJSON)' });

/**
 * The JSON values of a newline-delimited JSON body, one line at a time, without ever holding the
 * whole body: a job of 100,000 transfers is 10 MB of text. Blank lines are skipped.
 */
export async function* ndjsonLines(body: AsyncIterable<Uint8Array>): AsyncGenerator<NdjsonLine> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let rest = '';
  let line = 0;
  const parse = (text: string): NdjsonLine | undefined => {
    line++;
    if (!text.trim()) return undefined;
    try {
      return { line, value: JSON.parse(text) as unknown };
    } catch {
      throw badLine(line, 'not JSON');
    }
  };
  for await (const chunk of body) {
    let text: string;
    try {
      text = rest + decoder.decode(chunk, { stream: true });
    } catch {
      throw badLine(line + 1, 'not UTF-8');
    }
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      const parsed = parse(text.slice(start, end));
      start = end + 1;
      if (parsed) yield parsed;
    }
    rest = text.slice(start);
  }
  const parsed = parse(rest + decoder.decode());
  if (parsed) yield parsed;
}
