/**
 * Per-host health, as FTS's optimizer keeps it per link: consecutive "no answer" failures
 * (connection refused or reset before a reply, connect or handshake timeouts, no reply head)
 * lower a host's window of concurrent transfers (multiplicative decrease) and, past a threshold,
 * mark it down. A down host gets one probe at a time, at growing intervals; the first answer
 * reopens it with a window of one that grows by one with each answer (additive increase).
 * In memory only: after a restart every host starts healthy.
 */

export interface HostHealthOptions {
  /** The largest window: perHostConcurrency. */
  maxWindow: number;
  /** Consecutive unanswered failures that mark a host down. */
  downAfterFailures: number;
  probeFirstMs: number;
  probeMaxMs: number;
}

interface HostState {
  window: number;
  failures: number;
  /** When its current run of unanswered failures began. */
  failingSince?: number;
  /** Set while down. */
  down?: { since: number; interval: number; nextProbeAt: number; probe?: number | undefined };
}

export type HostVerdict = 'down' | 'up' | undefined;

export function createHostHealth(opts: HostHealthOptions) {
  const hosts = new Map<string, HostState>();

  const stateOf = (host: string): HostState => {
    let s = hosts.get(host);
    if (!s) {
      s = { window: opts.maxWindow, failures: 0 };
      hosts.set(host, s);
    }
    return s;
  };

  return {
    /** Transfers the host may run at once now; 0 while down between probes. */
    window(host: string, now: number): number {
      const s = hosts.get(host);
      if (!s) return opts.maxWindow;
      if (!s.down) return s.window;
      return s.down.probe === undefined && now >= s.down.nextProbeAt ? 1 : 0;
    },

    /** A transfer starts on the host: if it is down, that transfer is its probe. */
    started(host: string, transferId: number): void {
      const d = hosts.get(host)?.down;
      if (d) d.probe = transferId;
    },

    /** A transfer ended some other way (cancelled, stopped, a local error): a probe may go again. */
    ended(host: string, transferId: number): void {
      const d = hosts.get(host)?.down;
      if (d?.probe === transferId) d.probe = undefined;
    },

    /** The host failed to answer. Returns 'down' when this failure marked it so. */
    unanswered(host: string, transferId: number, now: number): HostVerdict {
      const s = stateOf(host);
      s.failures++;
      s.failingSince ??= now;
      s.window = Math.max(1, Math.floor(s.window / 2));
      if (s.down) {
        // A probe (or a transfer started before the host went down) found it still silent.
        if (s.down.probe === transferId) {
          s.down.probe = undefined;
          s.down.interval = Math.min(opts.probeMaxMs, s.down.interval * 2);
          s.down.nextProbeAt = now + s.down.interval;
        }
        return undefined;
      }
      if (s.failures < opts.downAfterFailures) return undefined;
      s.down = { since: s.failingSince, interval: opts.probeFirstMs, nextProbeAt: now + opts.probeFirstMs };
      return 'down';
    },

    /** The host answered (whatever it said). Returns 'up' when this reopened it. */
    answered(host: string): HostVerdict {
      const s = hosts.get(host);
      if (!s) return undefined;
      s.failures = 0;
      delete s.failingSince;
      if (s.down) {
        delete s.down;
        s.window = 1;
        return 'up';
      }
      s.window = Math.min(opts.maxWindow, s.window + 1);
      if (s.window === opts.maxWindow) hosts.delete(host);
      return undefined;
    },

    /** Forget what is known of the host: the next transfers to it find out afresh. */
    forget(host: string): void {
      hosts.delete(host);
    },

    isDown(host: string): boolean {
      return hosts.get(host)?.down !== undefined;
    },

    /** Since when a down host has not answered. */
    downSince(host: string): number | undefined {
      return hosts.get(host)?.down?.since;
    },

    /** The hosts that are down, with the time each went silent. */
    downHosts(): { host: string; since: number }[] {
      const out: { host: string; since: number }[] = [];
      for (const [host, s] of hosts) if (s.down) out.push({ host, since: s.down.since });
      return out;
    },

    /** When the next probe of a down host is due (for the scheduler's timer). */
    nextProbeAt(): number | undefined {
      let at: number | undefined;
      for (const s of hosts.values()) if (s.down && s.down.probe === undefined && (at === undefined || s.down.nextProbeAt < at)) at = s.down.nextProbeAt;
      return at;
    },
  };
}

export type HostHealth = ReturnType<typeof createHostHealth>;
