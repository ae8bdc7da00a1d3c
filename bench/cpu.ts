// CPU time, read from /proc: what a case costs the machine, beside how long it takes. On a
// 2-core test bed the client and the servers share the cores, so CPU time is where wall time goes.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces). */
function statFields(pid: number | 'self'): string[] {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** User + system CPU seconds a running process has used so far; 0 once it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const f = statFields(pid);
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND; // utime, stime
  } catch {
    return 0;
  }
}

/**
 * CPU seconds of the children this process has waited for (cutime + cstime), their own waited-for
 * children included: the delta around one command is what that command's process tree used.
 */
export function reapedChildrenCpuSeconds(): number {
  const f = statFields('self');
  return (Number(f[13]) + Number(f[14])) / TICKS_PER_SECOND;
}

export interface CpuSplit {
  /** The command (CLI, curl, gfal-copy) and, for Petrel, the agent. */
  client: number;
  /** The storage servers. */
  servers: number;
}

/**
 * Measures the CPU a stretch of work costs: the commands run meanwhile (with the agent's, for
 * Petrel's side) and the servers'.
 */
export function cpuProbe(pids: () => { agent?: number | undefined; servers: number[] }): (side: 'petrel' | 'reference') => () => CpuSplit {
  return (side) => {
    const read = () => {
      const p = pids();
      return {
        client: reapedChildrenCpuSeconds() + (side === 'petrel' && p.agent ? processCpuSeconds(p.agent) : 0),
        servers: p.servers.reduce((s, pid) => s + processCpuSeconds(pid), 0),
      };
    };
    const before = read();
    return () => {
      const after = read();
      return { client: after.client - before.client, servers: after.servers - before.servers };
    };
  };
}
