// XRootD 5.5.3 on this test bed now and then stops accepting connections for good: its workers
// all idle, its accept job lost (seen in gdb, during 500 copies). A benchmark run would then wait
// forever. The watchdog probes the servers while a run goes on, restarts one that stays silent,
// and records it, so the run can be measured again and the incident reported.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { restartServer, type XrootdServer } from '../test/testbed/index.js';

export interface Incident {
  server: string;
  during: string;
  at: string;
}

const PROBE_EVERY_MS = 15_000;
const PROBE_TIMEOUT_MS = 5_000;

/** Any HTTP answer within the timeout means the server is alive. */
function answers(s: XrootdServer, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${s.url}/`, { method: 'HEAD', ca, timeout: PROBE_TIMEOUT_MS, agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

export function createWatchdog(servers: XrootdServer[], caFile: string, log: (line: string) => void = console.log) {
  const ca = readFileSync(caFile);
  const incidents: Incident[] = [];

  async function checkAll(during: string): Promise<void> {
    for (const s of servers) {
      if ((await answers(s, ca)) || (await answers(s, ca))) continue;
      log(`watchdog: XRootD ${s.name} (${s.url}) stopped answering during ${during}; restarting it`);
      incidents.push({ server: s.name, during, at: new Date().toISOString() });
      await restartServer(s);
    }
  }

  return {
    incidents,
    /** Runs `fn` while probing the servers every 15 s. */
    async watch<T>(during: string, fn: () => Promise<T>): Promise<T> {
      let stopped = false;
      let timer: NodeJS.Timeout | undefined;
      const loop = () => {
        timer = setTimeout(() => {
          void checkAll(during).finally(() => {
            if (!stopped) loop();
          });
        }, PROBE_EVERY_MS);
      };
      loop();
      try {
        return await fn();
      } finally {
        stopped = true;
        clearTimeout(timer);
      }
    },
  };
}

export type Watchdog = ReturnType<typeof createWatchdog>;
