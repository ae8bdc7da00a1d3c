import { NDJSON_TYPE } from '../src/api/index.js';
import { PetrelError } from '../src/errors.js';

/** Whether a request's body is NDJSON, by its Content-Type. */
export const isNdjson = (contentType: string | undefined): boolean => (contentType ?? '').split(';')[0]?.trim().toLowerCase() === NDJSON_TYPE;

/** The refusal of a body over the agent's limit (maxRequestBytes). */
export const tooLarge = (maxBytes: number): PetrelError =>
  new PetrelError('API_PAYLOAD_TOO_LARGE', `the request body is larger than ${maxBytes} bytes`, { hint: 'split the job, or raise maxRequestBytes in config.json' });

export interface NdjsonLine {
  /** 1-based, as an editor counts. */
  line: number;
  value: unknown;
}

const badLine = (line: number, why: string) => new PetrelError('API_BAD_REQUEST', `line ${line}: ${why}`, { hint: 'send one JSON value per line (NDJSON)' });

/**
 * The JSON values of a newline-delimited JSON body, one line at a time, without ever holding the
 * whole body: a job of 100,000 transfers is 10 MB of text. Blank lines are skipped. A body of
 * more than `maxBytes` is refused as it comes (which also bounds a line).
 */
export async function* ndjsonLines(body: AsyncIterable<Uint8Array>, maxBytes = Infinity): AsyncGenerator<NdjsonLine> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let bytes = 0;
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
    bytes += chunk.length;
    if (bytes > maxBytes) throw tooLarge(maxBytes);
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
