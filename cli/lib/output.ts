import { asPetrelError, type ErrorCode } from '../../src/errors.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, agent: 3, interrupted: 130 } as const;

const EXIT_BY_CODE: Partial<Record<ErrorCode, number>> = {
  USAGE: EXIT.usage,
  API_BAD_REQUEST: EXIT.usage,
  TOKEN_FILE_UNREADABLE: EXIT.usage,
  TOKEN_REJECTED: EXIT.usage,
  FEDERATION_ISSUER_UNTRUSTED: EXIT.usage,
  AGENT_UNREACHABLE: EXIT.agent,
  AGENT_START_FAILED: EXIT.agent,
  AGENT_SOCKET_UNSAFE: EXIT.agent,
};

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Prints an error (as JSON on stdout with --json, else on stderr with its hint) and returns the exit code. */
export function reportError(e: unknown, json: boolean): number {
  const err = asPetrelError(e);
  if (json) printJson({ error: err.toJSON() });
  else {
    process.stderr.write(`petrel: ${err.message}\n`);
    if (err.hint) process.stderr.write(`  hint: ${err.hint}\n`);
    if (err.code === 'INTERNAL' && process.env.PETREL_DEBUG && err.cause instanceof Error) process.stderr.write(`${err.cause.stack}\n`);
  }
  return EXIT_BY_CODE[err.code] ?? EXIT.failed;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${UNITS[u]}`;
}
