/**
 * Errors carry a stable code, a message saying what happened and a hint saying what to run next.
 * They cross the socket as `{"error": {"code", "message", "hint"}}` and are rebuilt by the client.
 */
export const ERROR_STATUS = {
  USAGE: 400,
  API_BAD_REQUEST: 400,
  API_NOT_FOUND: 404,
  API_PAYLOAD_TOO_LARGE: 413,
  API_UNSUPPORTED_MEDIA_TYPE: 415,
  INTERNAL: 500,
  AGENT_UNREACHABLE: 503,
  AGENT_ALREADY_RUNNING: 409,
  AGENT_START_FAILED: 500,
  AGENT_SHUTTING_DOWN: 503,
  AGENT_SOCKET_UNSAFE: 500,
  JOB_NOT_FOUND: 404,
  JOB_NOT_FINISHED: 409,
  JOB_FINISHED: 409,
  TOKEN_FILE_UNREADABLE: 400,
  TOKEN_REJECTED: 400,
  WALLET_NOT_INITIALIZED: 404,
  WALLET_EXISTS: 409,
  WALLET_BAD_PASSWORD: 401,
  WALLET_CORRUPT: 500,
  WALLET_BUSY: 503,
  WALLET_IO: 500,
  WALLET_UNSAFE: 403,
  WALLET_CLOSED: 423,
  WALLET_ENTRY_NOT_FOUND: 404,
  CREDENTIAL_NEEDED: 409,
  CREDENTIAL_DEAD: 409,
  IDP_UNAVAILABLE: 502,
  IDP_REFUSED: 502,
  DEVICE_LOGIN_FAILED: 400,
  NO_ISSUER: 404,
  TRANSFER_DENIED: 403,
  TRANSFER_NOT_FOUND: 404,
  TRANSFER_REFUSED: 400,
  TRANSFER_SERVER_ERROR: 502,
  TRANSFER_THROTTLED: 429,
  TRANSFER_CONNECTION: 502,
  TRANSFER_TIMEOUT: 504,
  TRANSFER_PROTOCOL: 502,
  TRANSFER_CHECKSUM_MISMATCH: 422,
  TRANSFER_DISK_FULL: 507,
  TRANSFER_LOCAL_IO: 500,
  TRANSFER_SOURCE_MISSING: 404,
  TRANSFER_CANCELLED: 499,
  TRANSFER_INTERRUPTED: 503,
  TAPE_UNSUPPORTED: 501,
  TAPE_STAGE_FAILED: 502,
  FEDERATION_UNAVAILABLE: 502,
  FEDERATION_NOT_FOUND: 404,
  FEDERATION_READ_ONLY: 409,
  FEDERATION_ISSUER_UNTRUSTED: 400,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * An error as the socket API, the events and the database carry it. Read from the wire, `code`
 * is any string (a newer agent may know codes this petrel does not): `ErrorInfo<string>`.
 */
export interface ErrorInfo<Code extends string = ErrorCode> {
  code: Code;
  message: string;
  hint?: string | undefined;
}

export interface PetrelErrorOptions {
  hint?: string | undefined;
  cause?: unknown;
  /** Worth trying again later (connection loss, 5xx, 429). */
  transient?: boolean;
  /** Server-requested delay before a retry (Retry-After). */
  retryAfterMs?: number | undefined;
  /** The storage did not answer at all (refused, reset or silent before a reply): its host's health counts it, not the transfer's attempts. */
  unanswered?: boolean;
}

export class PetrelError extends Error {
  override name = 'PetrelError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly transient: boolean;
  readonly retryAfterMs: number | undefined;
  readonly unanswered: boolean;

  constructor(code: ErrorCode, message: string, opts: PetrelErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.hint = opts.hint;
    this.transient = opts.transient ?? false;
    this.retryAfterMs = opts.retryAfterMs;
    this.unanswered = opts.unanswered ?? false;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toJSON(): ErrorInfo {
    return { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}) };
  }
}

/** Errors that park a transfer in `waiting` until the user acts (warm, open the wallet), instead of failing it. */
export const WAITING_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['CREDENTIAL_NEEDED', 'CREDENTIAL_DEAD', 'WALLET_CLOSED']);

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_STATUS, code);
}

/** Any thrown value as a PetrelError; unknown errors become INTERNAL with the original as cause. */
export function asPetrelError(e: unknown): PetrelError {
  if (e instanceof PetrelError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new PetrelError('INTERNAL', message, { cause: e });
}
