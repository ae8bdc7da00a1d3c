import type { Writable } from 'node:stream';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const SECRET_KEY = /token|password|passwd|secret|authorization|cookie|^key$|credential/i;
const SECRET_TEXT: readonly RegExp[] = [
  /\b(Bearer)\s+[^\s"',;]+/gi,
  /\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/g, // JWTs
  /([?&](?:authz|access_token|token)=)[^&\s"']+/gi,
];

/** Removes anything that looks like a token from free text (server messages, URLs, errors). */
export function redactText(text: string): string {
  let out = text;
  for (const re of SECRET_TEXT) {
    out = out.replace(re, (_m, keep: string | undefined) =>
      typeof keep === 'string' && keep.length > 0 && !keep.startsWith('eyJ') ? `${keep} [redacted]` : '[redacted]',
    );
  }
  return out;
}

export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 6) return '[too deep]';
  if (value instanceof Date) return value.toISOString();
  if (value instanceof URL) return redactText(value.href);
  if (value instanceof Error) {
    const err: LogFields = { name: value.name, message: redactText(value.message) };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) err.code = code;
    if (value.cause !== undefined) err.cause = redact(value.cause, depth + 1);
    return err;
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: LogFields = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== null && v !== undefined && typeof v !== 'boolean' ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

export interface LoggerOptions {
  stream: Writable;
  level?: LogLevel;
  base?: LogFields;
}

/** JSON-lines logger; every record passes through `redact`, so secrets never reach the stream. */
export function createLogger({ stream, level = 'info', base = {} }: LoggerOptions): Logger {
  const min = LEVELS[level];
  const write = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVELS[lvl] < min) return;
    const record = { time: new Date().toISOString(), level: lvl, msg: redactText(msg), ...(redact({ ...base, ...fields }) as LogFields) };
    stream.write(`${JSON.stringify(record)}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
