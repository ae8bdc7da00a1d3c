import { readFile, writeFile } from 'node:fs/promises';

/** VmRSS (now) or VmHWM (peak) of a process, in MB. */
export async function rssMB(pid: number, which: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${which}:\\s+(\\d+) kB`).exec(status)?.[1]) / 1024;
}

/** Starts a process's VmHWM afresh from its current RSS (Linux: `5` to clear_refs), so a run's peak is its own. */
export async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}
