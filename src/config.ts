import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { PetrelError } from './errors.js';

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
    /** No byte received or sent for this long → the attempt fails as transient. */
    idleTimeoutMs: z.number().int().min(100).default(120_000),
    connectTimeoutMs: z.number().int().min(100).default(30_000),
    /** Largest accepted socket API request body. */
    maxRequestBytes: z.number().int().min(1024).default(64 * 1024 * 1024),
    /** How often running transfers' byte counts are written to the database. */
    progressFlushMs: z.number().int().min(50).default(2_000),
  })
  .strict();

export type AgentConfig = z.infer<typeof AgentConfigSchema>;

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
