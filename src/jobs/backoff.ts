export interface BackoffPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Exponential backoff with "equal jitter": half the delay is fixed, half random. `attempt` counts from 1. */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}
