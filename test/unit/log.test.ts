import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactText, type LoggerOptions } from '../../src/log.js';

// Built at run time so no token-shaped literal sits in the source.
const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const JWT = `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ sub: 'alice', scope: 'storage.read:/' })}.c2lnbmF0dXJlX2J5dGVz`;
const SIG = 'c2lnbmF0dXJlX2J5dGVz';

/** A real Writable that keeps every chunk written to it. */
function sink(): { stream: Writable; text: () => string; records: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const text = (): string => chunks.join('');
  return {
    stream,
    text,
    records: () =>
      text()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function logTo(opts: Omit<LoggerOptions, 'stream'> = {}) {
  const out = sink();
  return { log: createLogger({ stream: out.stream, ...opts }), ...out };
}

describe('redactText', () => {
  it('removes a JWT in the middle of a sentence', () => {
    const out = redactText(`server said: invalid token ${JWT} for /store`);
    expect(out).not.toContain(SIG);
    expect(out).not.toContain('eyJ');
    expect(out).toBe('server said: invalid token [redacted] for /store');
  });

  it('removes the credential after Bearer, keeping the word', () => {
    expect(redactText('Authorization: Bearer xyz123')).toBe('Authorization: Bearer [redacted]');
  });

  it('removes a lower-case bearer credential', () => {
    expect(redactText('bearer abc.def')).not.toContain('abc.def');
  });

  it('removes the authz query parameter of a URL, keeping the rest', () => {
    const out = redactText('GET https://h.example.org/a.root?authz=s3cr3t&x=1 failed');
    expect(out).not.toContain('s3cr3t');
    expect(out).toContain('https://h.example.org/a.root?authz=');
    expect(out).toContain('&x=1 failed');
  });

  it('removes access_token and token query parameters', () => {
    const out = redactText('https://h/a?x=1&access_token=AAA https://h/b?token=BBB');
    expect(out).not.toContain('AAA');
    expect(out).not.toContain('BBB');
  });

  it('leaves ordinary text untouched', () => {
    const text = 'copied https://h.example.org:1094/store/a.root to /data/a.root (3 MB, adler32 6895ba71)';
    expect(redactText(text)).toBe(text);
  });
});

describe('createLogger', () => {
  it('writes one JSON line per record with time, level and message', () => {
    const { log, records } = logTo();
    log.info('job submitted', { job: 'abc', transfers: 3 });
    const [r] = records();
    expect(r).toMatchObject({ level: 'info', msg: 'job submitted', job: 'abc', transfers: 3 });
    expect(Number.isNaN(Date.parse(String(r?.time)))).toBe(false);
  });

  it('never writes a JWT found in the message', () => {
    const { log, text } = logTo();
    log.warn(`refused ${JWT}`);
    expect(text()).not.toContain(SIG);
    expect(text()).toContain('refused [redacted]');
  });

  it('never writes a JWT found in a nested field value', () => {
    const { log, text } = logTo();
    log.error('transfer failed', { transfer: { attempts: [{ reply: `401 ${JWT}` }] } });
    expect(text()).not.toContain(SIG);
  });

  it('never writes a JWT from an error message or its cause', () => {
    const { log, text } = logTo();
    log.error('transfer crashed', { error: new Error('outer', { cause: new Error(`inner ${JWT}`) }) });
    expect(text()).not.toContain(SIG);
    expect(text()).toContain('outer');
  });

  it('replaces a Bearer credential in a field with [redacted]', () => {
    const { log, records } = logTo();
    log.info('request', { header: 'Bearer xyz' });
    expect(records()[0]?.header).toBe('Bearer [redacted]');
  });

  it.each(['token', 'password', 'secret', 'authorization', 'accessToken', 'Authorization', 'client_secret'])('redacts the value of a key named %s', (key) => {
    const { log, records, text } = logTo();
    log.info('x', { nested: { [key]: 'plain-value-42' } });
    expect(text()).not.toContain('plain-value-42');
    expect((records()[0]?.nested as Record<string, unknown>)[key]).toBe('[redacted]');
  });

  it('redacts a whole object under a secret key', () => {
    const { log, text } = logTo();
    log.info('x', { credential: { refresh: 'r-value-42', access: 'a-value-42' } });
    expect(text()).not.toContain('value-42');
  });

  it('redacts the authz parameter of a URL in a field', () => {
    const { log, text } = logTo();
    log.info('x', { url: 'https://h.example.org/a?authz=q-value-42' });
    expect(text()).not.toContain('q-value-42');
  });

  it('leaves ordinary fields untouched', () => {
    const { log, records } = logTo();
    const fields = { job: 'k2m9', source: 'https://h.example.org/a.root', bytes: 1024, ok: true, list: [1, 'two'] };
    log.info('done', fields);
    expect(records()[0]).toMatchObject(fields);
  });

  it('drops records below the level and keeps those at or above it', () => {
    const { log, records } = logTo({ level: 'warn' });
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(records().map((r) => r.msg)).toEqual(['w', 'e']);
  });

  it('drops debug records at the default level', () => {
    const { log, records } = logTo();
    log.debug('d');
    log.info('i');
    expect(records().map((r) => r.level)).toEqual(['info']);
  });

  it('adds the base fields to every record', () => {
    const { log, records } = logTo({ base: { run: 'r1' } });
    log.info('a');
    log.warn('b');
    expect(records().map((r) => r.run)).toEqual(['r1', 'r1']);
  });

  // Regression (found by this test): src/log.ts:62 spreads `base` into the record without `redact`, so a secret in the
  // logger's base fields reaches the stream verbatim.
  it('never writes a secret found in the base fields', () => {
    const { log, text } = logTo({ base: { token: 'base-value-42', note: `seen ${JWT}` } });
    log.info('a');
    expect(text()).not.toContain('base-value-42');
    expect(text()).not.toContain(SIG);
  });

  // Regression (found by this test): src/log.ts:35 returns objects deeper than 6 levels as they are, unredacted, and
  // JSON.stringify then writes them out in full.
  it('never writes a secret nested deeper than six levels', () => {
    const { log, text } = logTo();
    log.info('deep', { a: { b: { c: { d: { e: { f: { g: { token: 'deep-value-42', msg: `x ${JWT}` } } } } } } } });
    expect(text()).not.toContain('deep-value-42');
    expect(text()).not.toContain(SIG);
  });
});
