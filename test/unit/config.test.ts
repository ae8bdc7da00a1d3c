import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { defaultConfig, loadConfig } from '../../src/config.js';
import { PetrelError } from '../../src/errors.js';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'petrel-config-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A config.json holding `text` in a fresh temp directory. */
async function configFile(text: string): Promise<string> {
  const file = join(await tempDir(), 'config.json');
  await writeFile(file, text);
  return file;
}

async function rejection(p: Promise<unknown>): Promise<PetrelError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'loadConfig should have failed with a PetrelError').toBeInstanceOf(PetrelError);
  return e as PetrelError;
}

describe('loadConfig', () => {
  it('gives the defaults when the file does not exist', async () => {
    const config = await loadConfig(join(await tempDir(), 'missing.json'));
    expect(config).toEqual({
      concurrency: 4,
      perHostConcurrency: 4,
      retry: { attempts: 5, baseDelayMs: 2_000, maxDelayMs: 300_000 },
      idleTimeoutMs: 120_000,
      connectTimeoutMs: 30_000,
      copyMarkerTimeoutMs: 120_000,
      maxRequestBytes: 64 * 1024 * 1024,
      maxUnknownSizeBytes: 100 * 2 ** 30,
      download: { streams: 4, minStreamBytes: 32 << 20, minRoundTripMs: 10, directMinBytes: 64 << 20 },
      hostDownAfterFailures: 3,
      hostProbeFirstMs: 10_000,
      hostProbeMaxMs: 600_000,
      hostDownFailAfterMs: 6 * 3_600_000,
      progressFlushMs: 2_000,
      issuers: [],
      federations: {},
      federation: { discoveryTtlMs: 1_800_000, failedDiscoveryTtlMs: 300_000, namespaceTtlMs: 600_000 },
      tokens: { minValidityMs: 300_000, refreshSchedule: '*/10 * * * *', refreshWindowMs: 1_800_000, maxRefreshBackoffMs: 1_800_000 },
      tape: { batchSize: 200, fillWaitMs: 2_000, maxRequestsPerEndpoint: 20, firstPollMs: 10_000, maxPollMs: 600_000, stageTimeoutMs: 7 * 86_400_000, discoveryTtlMs: 3_600_000 },
    });
  });

  it('takes federations by name, and refuses a discovery URL that is not https', async () => {
    const config = await loadConfig(await configFile('{"federations": {"osdf": {"discovery": "https://localhost:8444"}}}'));
    expect(config.federations).toEqual({ osdf: { discovery: 'https://localhost:8444' } });
    const e = await rejection(loadConfig(await configFile('{"federations": {"osdf": {"discovery": "http://osg-htc.org"}}}')));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain('federations');
  });

  it('gives the defaults for an empty object', async () => {
    expect(await loadConfig(await configFile('{}'))).toEqual(defaultConfig());
  });

  it('merges a partial file with the defaults', async () => {
    const config = await loadConfig(await configFile('{"concurrency": 16}'));
    expect(config).toEqual({ ...defaultConfig(), concurrency: 16 });
  });

  it('merges a partial retry section with the retry defaults', async () => {
    const config = await loadConfig(await configFile('{"retry": {"attempts": 2}}'));
    expect(config.retry).toEqual({ attempts: 2, baseDelayMs: 2_000, maxDelayMs: 300_000 });
  });

  it('refuses invalid JSON with USAGE naming the file', async () => {
    const file = await configFile('{"concurrency": 16,');
    const e = await rejection(loadConfig(file));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain(file);
    expect(e.hint).toContain(file);
  });

  it('refuses an unknown top-level key with USAGE naming the file', async () => {
    const file = await configFile('{"concurency": 16}');
    const e = await rejection(loadConfig(file));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain(file);
  });

  // Regression (found by this test): src/config.ts:84 — only the root object is .strict(); the retry object strips unknown
  // keys, so a typo such as {"retry": {"attempt": 3}} is silently ignored instead of refused.
  it('refuses an unknown key inside retry with USAGE', async () => {
    const e = await rejection(loadConfig(await configFile('{"retry": {"attempt": 3}}')));
    expect(e.code).toBe('USAGE');
  });

  it('refuses a value of the wrong type with USAGE naming the key', async () => {
    const e = await rejection(loadConfig(await configFile('{"concurrency": "8"}')));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain('concurrency');
  });

  it('refuses a wrong type nested in retry with USAGE naming its path', async () => {
    const e = await rejection(loadConfig(await configFile('{"retry": {"maxDelayMs": true}}')));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain('retry.maxDelayMs');
  });

  it('refuses a value out of range with USAGE', async () => {
    expect((await rejection(loadConfig(await configFile('{"concurrency": 0}')))).code).toBe('USAGE');
  });

  it('refuses a non-integer count with USAGE', async () => {
    expect((await rejection(loadConfig(await configFile('{"perHostConcurrency": 2.5}')))).code).toBe('USAGE');
  });

  it('refuses a JSON value that is not an object with USAGE', async () => {
    expect((await rejection(loadConfig(await configFile('[]')))).code).toBe('USAGE');
  });

  it('refuses a path that is a directory with USAGE naming it', async () => {
    const dir = await tempDir();
    const e = await rejection(loadConfig(dir));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain(dir);
  });
});
