import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { PetrelError } from './errors.js';

/** Which issuer hands out tokens for the storages under a URL prefix. */
export const IssuerSetting = z
  .object({
    /** Storage URL prefix, e.g. `https://eos.example.org:443/eos/myexp`. */
    prefix: z.string().url(),
    issuer: z.string().url(),
    /** The `aud` the storage expects; none asked for when absent. */
    audience: z.string().optional(),
    /** The storage path that the issuer's scope paths are relative to (its `base_path`). */
    basePath: z.string().startsWith('/').default('/'),
    /** Renew credentials without a refresh token by RFC 8693 token exchange. */
    tokenExchange: z.boolean().default(false),
  })
  .strict();
export type IssuerSetting = z.infer<typeof IssuerSetting>;

export const FederationSetting = z
  .object({
    /** Where its discovery document is: `https://host[:port]`. */
    discovery: z.string().url().refine((u) => u.startsWith('https://'), 'a discovery URL is https://'),
  })
  .strict();
export type FederationSetting = z.infer<typeof FederationSetting>;

export const AgentConfigSchema = z
  .object({
    /** Transfers running at once, over all hosts. */
    concurrency: z.number().int().min(1).max(256).default(4),
    /** Transfers running at once against one host:port. */
    perHostConcurrency: z.number().int().min(1).max(256).default(4),
    retry: z
      .object({
        attempts: z.number().int().min(1).max(100).default(5),
        baseDelayMs: z.number().int().min(0).default(2_000),
        maxDelayMs: z.number().int().min(0).default(300_000),
      })
      .strict()
      .prefault({}),
    /** Consecutive unanswered attempts (refused, reset or silent before a reply) that mark a host down. */
    hostDownAfterFailures: z.number().int().min(1).default(3),
    /** A down host is probed by one transfer after this long, the wait doubling up to hostProbeMaxMs. */
    hostProbeFirstMs: z.number().int().min(10).default(10_000),
    hostProbeMaxMs: z.number().int().min(10).default(10 * 60_000),
    /** What still waits for a host down this long fails. */
    hostDownFailAfterMs: z.number().int().min(0).default(6 * 3_600_000),
    /** No byte received or sent for this long → the attempt fails as transient. */
    idleTimeoutMs: z.number().int().min(100).default(120_000),
    connectTimeoutMs: z.number().int().min(100).default(30_000),
    /** A third-party copy without a progress marker for this long is aborted and retried. */
    copyMarkerTimeoutMs: z.number().int().min(100).default(120_000),
    /** A download whose server announces no size (and no HEAD told it) fails past this many bytes. */
    maxUnknownSizeBytes: z.number().int().min(1).default(100 * 2 ** 30),
    /** Free space a download leaves on its file system; default: 1% of it, at most 1 GiB. */
    diskReserveBytes: z.number().int().min(0).optional(),
    /**
     * Large downloads in byte ranges at once, each over its own connection and thread (aria2's
     * split, rclone's multi-thread streams): `streams` at most per file, none shorter than
     * `minStreamBytes`, from servers whose first reply took at least `minRoundTripMs` (a
     * distant server, where one connection's window is the limit). 1 stream turns it off.
     */
    download: z
      .object({
        streams: z.number().int().min(1).max(16).default(4),
        minStreamBytes: z.number().int().min(1 << 20).default(32 << 20),
        minRoundTripMs: z.number().min(0).default(10),
        /**
         * An https download with at least this many bytes to go reads them straight off a TLS
         * connection of its own, not through node:https (half the CPU; src/transfer/direct-range.ts). 0: never.
         */
        directMinBytes: z.number().int().min(0).default(64 << 20),
      })
      .strict()
      .prefault({}),
    /** Largest accepted socket API request body. */
    maxRequestBytes: z.number().int().min(1024).default(64 * 1024 * 1024),
    /** How often running transfers' byte counts are written to the database. */
    progressFlushMs: z.number().int().min(50).default(2_000),
    issuers: z.array(IssuerSetting).default([]),
    /** Tape recalls (WLCG Tape REST API): how files are batched into stage requests and how those are polled. */
    tape: z
      .object({
        /** Files in one stage request, at most (the storage may take fewer: a 413 halves it). */
        batchSize: z.number().int().min(1).max(10_000).default(200),
        /** A batch goes out when its oldest file has waited this long, full or not. */
        fillWaitMs: z.number().int().min(0).default(2_000),
        /** Stage requests outstanding at one tape endpoint, at most. */
        maxRequestsPerEndpoint: z.number().int().min(1).default(20),
        /** The first poll of a request after this long, the interval doubling up to maxPollMs. */
        firstPollMs: z.number().int().min(10).default(10_000),
        maxPollMs: z.number().int().min(10).default(10 * 60_000),
        /** A file not on disk this long after its request fails. */
        stageTimeoutMs: z.number().int().min(1_000).default(7 * 86_400_000),
        /** A discovery document is trusted this long when the storage sends no Cache-Control max-age. */
        discoveryTtlMs: z.number().int().min(0).default(3_600_000),
      })
      .strict()
      .prefault({}),
    /**
     * Pelican federations by name: `osdf` (also `stash`) is where osdf:/// URLs go (default
     * https://osg-htc.org); another name `n` serves pelican://n/… URLs. A pelican://host/… URL
     * whose host is no name here needs no entry: its host is the discovery host.
     */
    federations: z.record(z.string().min(1), FederationSetting).default({}),
    federation: z
      .object({
        /** A discovery document is kept this long; a failed discovery is not asked again for failedDiscoveryTtlMs. */
        discoveryTtlMs: z.number().int().min(0).default(30 * 60_000),
        failedDiscoveryTtlMs: z.number().int().min(0).default(5 * 60_000),
        /** A director's answer serves every object under its namespace for this long. */
        namespaceTtlMs: z.number().int().min(0).default(10 * 60_000),
      })
      .strict()
      .prefault({}),
    tokens: z
      .object({
        /** A cached access token is used only with at least this much life left. */
        minValidityMs: z.number().int().min(0).default(5 * 60_000),
        /** Background refresh: a cron expression (seconds field allowed). */
        refreshSchedule: z.string().default('*/10 * * * *'),
        /** Background refresh renews access tokens expiring within this window. */
        refreshWindowMs: z.number().int().min(0).default(30 * 60_000),
        /** Longest wait between background retries after identity-provider errors. */
        maxRefreshBackoffMs: z.number().int().min(0).default(30 * 60_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type AgentConfig = z.infer<typeof AgentConfigSchema>;

/** PEM file of CAs trusted beside the system's (PETREL_CA_FILE): read here, nowhere else. */
export function caFileFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.PETREL_CA_FILE || undefined;
}

export function defaultConfig(): AgentConfig {
  return AgentConfigSchema.parse({});
}

/** Reads config.json; a missing file means defaults, a broken one is an error naming the file. */
export async function loadConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return defaultConfig();
    throw new PetrelError('USAGE', `cannot read the config file ${file}: ${(e as Error).message}`, { cause: e });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new PetrelError('USAGE', `the config file ${file} is not valid JSON: ${(e as Error).message}`, {
      hint: `fix or remove ${file}`,
      cause: e,
    });
  }
  const parsed = AgentConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PetrelError('USAGE', `the config file ${file} is invalid: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`, {
      hint: `fix or remove ${file}`,
    });
  }
  return parsed.data;
}
