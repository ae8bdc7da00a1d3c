// The HTTP engine as engine-level tests use it: trusting the test bed's CA, a short idle timeout,
// closed (and its temp dirs removed) when the test ends.
import { execFileSync } from 'node:child_process';
import { statfsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { createHttpEngine } from '../../src/transfer/engine.js';
import type { TransferContext } from '../../src/transfer/task.js';
import type { TestbedInfo } from '../testbed/index.js';

/** A temp dir under the system's, removed when the test ends. */
export async function tempDir(prefix = 'petrel-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A tmpfs of `size` bytes in a temp dir, unmounted when the test ends. Mounting needs root, which CI has. */
export async function smallDisk(size: number, prefix?: string): Promise<string> {
  const dir = await tempDir(prefix);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  onTestFinished(() => void execFileSync('umount', ['-l', dir]));
  return dir;
}

/** Another writer fills the file system of `dir` until only `leave` bytes are free. */
export function fillDisk(dir: string, leave: number): void {
  const { bavail, bsize } = statfsSync(dir);
  writeFileSync(join(dir, 'filler'), Buffer.alloc(bavail * bsize - leave));
}

export function testEngine(tb: Pick<TestbedInfo, 'caFile'>, opts: Parameters<typeof createHttpEngine>[0] = {}) {
  const e = createHttpEngine({ caFile: tb.caFile, idleTimeoutMs: 10_000, ...opts });
  onTestFinished(() => e.close());
  return e;
}

/** A context nobody cancels or watches. */
export const quietContext = (): TransferContext => ({ signal: new AbortController().signal, onProgress: () => undefined });
