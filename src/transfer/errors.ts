import { PetrelError } from '../errors.js';
import { redactText } from '../log.js';

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_NOT_YET_VALID',
]);

function errCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function rootCause(e: unknown): unknown {
  let cur = e;
  for (let i = 0; i < 5 && cur && typeof cur === 'object' && 'cause' in cur && (cur as { cause?: unknown }).cause; i++) {
    const next = (cur as { cause: unknown }).cause;
    if (errCode(next) === undefined && errCode(cur) !== undefined) break;
    cur = next;
  }
  return cur;
}

export function isAbort(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  return name === 'AbortError' || errCode(e) === 'UND_ERR_ABORTED' || errCode(e) === 'ABORT_ERR';
}

/** Socket and TLS failures (and undici's, for the OpenID client): connection loss and timeouts are transient, TLS trust problems are not. */
export function networkError(e: unknown, url: URL, opts: { beforeReply?: boolean } = {}): PetrelError {
  const err = classifyNetworkError(e, url);
  // Silence before any reply says the host is in trouble, not this transfer (host health).
  // A name that does not resolve is no host's silence (a typo fails after its attempts).
  const code = errCode(rootCause(e)) ?? errCode(e);
  if (!opts.beforeReply || !err.transient || err.unanswered || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return err;
  return new PetrelError(err.code, err.message, { hint: err.hint, cause: err.cause, transient: true, retryAfterMs: err.retryAfterMs, unanswered: true });
}

function classifyNetworkError(e: unknown, url: URL): PetrelError {
  if (e instanceof PetrelError) return e;
  if (isAbort(e)) return new PetrelError('TRANSFER_CANCELLED', `request to ${url.host} aborted`, { cause: e });
  const root = rootCause(e);
  const code = errCode(root) ?? errCode(e) ?? '';
  const detail = (root as Error | undefined)?.message ?? String(e);
  if (TLS_CODES.has(code)) {
    return new PetrelError('TRANSFER_CONNECTION', `TLS: cannot verify ${url.host}: ${detail}`, {
      hint: 'if the storage uses a private CA, point PETREL_CA_FILE at its PEM file',
      cause: e,
    });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    // Transient: a DNS or VPN blip in the night must not fail a queue; a typo fails after the retries.
    return new PetrelError('TRANSFER_CONNECTION', `cannot resolve ${url.hostname}`, { hint: 'check the host name in the URL', cause: e, transient: true });
  }
  if (code === 'HPE_HEADER_OVERFLOW') {
    // The server's own answer, the same on every try.
    return new PetrelError('TRANSFER_PROTOCOL', `${url.host} answered with more header bytes than petrel accepts (16 KiB)`, { hint: 'tell the storage operators', cause: e });
  }
  if (code.includes('TIMEOUT') || code === 'ETIMEDOUT') {
    return new PetrelError('TRANSFER_TIMEOUT', `${url.host} stopped answering (${code})`, { transient: true, cause: e });
  }
  return new PetrelError('TRANSFER_CONNECTION', `connection to ${url.host} failed: ${detail}${code ? ` (${code})` : ''}`, {
    transient: true,
    cause: e,
  });
}

function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A non-success HTTP status as an error carrying the server's own words. */
export function httpError(op: string, url: URL, status: number, serverText: string, retryAfter?: string): PetrelError {
  const said = redactText(serverText.replace(/\s+/g, ' ').trim()) || '(no reason given)';
  const message = `${op} ${url.href}: ${status} ${said}`;
  if (status === 401 || status === 403) {
    return new PetrelError('TRANSFER_DENIED', message, {
      hint: 'the storage refused the token (or none was sent): check its scope, audience and expiry, or pass --token FILE',
    });
  }
  if (status === 404 || status === 410) return new PetrelError('TRANSFER_NOT_FOUND', message, { hint: 'check the path' });
  if (status === 429) return new PetrelError('TRANSFER_THROTTLED', message, { transient: true, retryAfterMs: retryAfterMs(retryAfter) });
  if (status === 408) return new PetrelError('TRANSFER_TIMEOUT', message, { transient: true });
  if (status >= 500) {
    return new PetrelError('TRANSFER_SERVER_ERROR', message, { transient: status !== 501 && status !== 505, retryAfterMs: retryAfterMs(retryAfter) });
  }
  return new PetrelError('TRANSFER_REFUSED', message);
}

/** Local file system failures: a full disk or a permission problem will not heal by retrying. */
export function localError(e: unknown, path: string, doing: string): PetrelError {
  if (e instanceof PetrelError) return e;
  const code = errCode(e) ?? '';
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new PetrelError('TRANSFER_DISK_FULL', `no space left while ${doing} ${path}`, { hint: 'free some space and run `petrel job retry <id>`', cause: e });
  }
  if (code === 'ENOENT' && doing === 'reading') {
    return new PetrelError('TRANSFER_SOURCE_MISSING', `${path} does not exist`, { hint: 'check the source path', cause: e });
  }
  return new PetrelError('TRANSFER_LOCAL_IO', `${doing} ${path} failed: ${(e as Error).message}`, {
    hint: code === 'EACCES' || code === 'EPERM' ? 'check the permissions of the file and its folder' : undefined,
    cause: e,
  });
}
