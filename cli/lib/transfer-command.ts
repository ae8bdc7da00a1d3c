import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ChecksumChoice, SubmitJobRequest, TransferSpec, AgentClient } from '../../src/api/index.js';
import type { CopyMode } from '../../src/domain.js';
import { agentSource, createTokenResolver, discoveredToken, tokenNeeds, tokensForTask } from '../../src/auth/index.js';
import { PetrelError, WAITING_CODES } from '../../src/errors.js';
import { planRecalls, planTransfers, parsePairList, type Direction, type PairInput } from './plan.js';
import { parseDiskLifetime } from '../../src/tape/index.js';
import type { Operation } from '../../src/auth/index.js';
import type { TransferTask } from '../../src/transfer/index.js';
import { agentClient, ensureAgent } from './agent-process.js';
import { followJob, reportOutcome, type JobSource } from './follow.js';
import { EXIT, print, printJson } from './output.js';
import { readSecretFile } from './secret-file.js';
import { checkToken } from './token-uses.js';

export interface TransferOptions {
  async?: boolean;
  wait?: boolean;
  json?: boolean;
  token?: string;
  checksum: ChecksumChoice;
  fromFile?: string;
  quiet?: boolean;
  allowInsecureRedirect?: boolean;
  /** copy only */
  mode?: CopyMode;
  overwrite?: boolean;
  fallback?: 'streamed';
  srcToken?: string;
  dstToken?: string;
  skipExisting?: boolean;
  sync?: boolean;
  /** get, put and copy: whole directory trees */
  recursive?: boolean;
  /** put -r: follow symbolic links in the local tree */
  followSymlinks?: boolean;
  /** get and copy: recall each source from tape first */
  stage?: boolean;
  diskLifetime?: string;
  /** get: federation caches to try first (`URL+`: then the director's) */
  cache?: string[];
}

/** `--cache A --cache B+` → [A, B, '+']: the caches in order, `+` for "then the director's". */
export function cacheList(values: readonly string[] | undefined): string[] | undefined {
  if (!values?.length) return undefined;
  const out: string[] = [];
  values.forEach((v, i) => {
    const more = v.endsWith('+');
    const url = more ? v.slice(0, -1) : v;
    if (more && i !== values.length - 1) throw new PetrelError('USAGE', `--cache ${v}: only the last cache may end in +`, { hint: 'the + adds the director\'s caches after all those named' });
    if (url) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw new PetrelError('USAGE', `--cache ${v} is not a URL`, { hint: 'name a cache as https://host:port' });
      }
      if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new PetrelError('USAGE', `--cache ${v} is not an https:// URL`);
      out.push(parsed.origin);
    }
    if (more) out.push('+');
  });
  return out;
}

const readTokenFile = (file: string): Promise<string> => readSecretFile(file, 'token');

/** --token FILE, else WLCG bearer-token discovery; none at all is allowed (public data). */
async function jobToken(opts: TransferOptions): Promise<string | undefined> {
  if (opts.token) return readTokenFile(opts.token);
  return (await discoveredToken())?.token;
}

async function plan(kind: Direction, paths: string[], opts: TransferOptions): Promise<TransferSpec[]> {
  if (opts.fromFile) {
    const text = await readList(opts.fromFile);
    if (paths.length > 1) throw new PetrelError('USAGE', 'with --from-file, give at most one destination directory on the command line');
    return planTransfers(kind, parsePairList(text, opts.fromFile), paths[0]);
  }
  if (paths.length < 2) throw new PetrelError('USAGE', `\`petrel ${kind}\` needs a source and a destination`, { hint: `petrel ${kind} SRC... DEST` });
  const dest = paths.at(-1) as string;
  if (opts.recursive) return (await import('./tree.js')).planTrees(kind, paths.slice(0, -1), dest);
  const pairs: PairInput[] = paths.slice(0, -1).map((source) => ({ source }));
  return planTransfers(kind, pairs, dest);
}

/** What the job's token must allow: each side's operation, and the recall of each source for a job that stages. */
function tokenUses(request: Pick<SubmitJobRequest, 'kind' | 'stage' | 'transfers'>): { side: 'source' | 'destination'; url: URL; operation: Operation }[] {
  return request.transfers.flatMap((t) => [
    ...tokenNeeds({ kind: request.kind, ...t }),
    ...(request.stage ? [{ side: 'source' as const, url: new URL(t.source), operation: 'stage' as const }] : []),
  ]);
}

/** --disk-lifetime, as the storage will be sent it. */
function stageOptions(opts: Pick<TransferOptions, 'stage' | 'diskLifetime'>): Pick<SubmitJobRequest, 'stage' | 'diskLifetime'> {
  return { ...(opts.stage ? { stage: true } : {}), ...(opts.diskLifetime ? { diskLifetime: parseDiskLifetime(opts.diskLifetime) } : {}) };
}

/**
 * `petrel prestage URL...`: a job of tape recalls, run by the agent (hours of polling need no
 * terminal); without --async the command follows it to its end.
 */
export async function runPrestageCommand(sources: string[], opts: TransferOptions): Promise<number> {
  const texts = opts.fromFile ? [...sources, ...parsePairList(await readList(opts.fromFile), opts.fromFile).map((p) => p.source)] : sources;
  const request: SubmitJobRequest = { kind: 'prestage', transfers: planRecalls(texts), checksum: 'none', ...stageOptions(opts) };
  await attachToken(request, opts);
  const json = Boolean(opts.json);
  return submitToAgent(request, { json, quiet: json || Boolean(opts.quiet), wait: !opts.async || Boolean(opts.wait) });
}

async function readList(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: unknown) => {
    throw new PetrelError('USAGE', `cannot read ${file}: ${(e as Error).message}`);
  });
}

/** --token FILE (or a discovered one) on the job, with a warning for each use its scopes do not cover. */
async function attachToken(request: SubmitJobRequest, opts: TransferOptions): Promise<void> {
  const token = await jobToken(opts);
  if (!token) return;
  const verdict = await checkToken(token, tokenUses(request).map((n) => ({ op: n.operation, url: n.url })));
  if (!opts.json) for (const w of verdict.warnings) process.stderr.write(`petrel: warning: ${w}\n`);
  request.token = token;
}

/** get and put: submit to the agent with --async, else run in this process with the same engine. A job that stages runs in the agent. */
export async function runTransferCommand(kind: Direction, paths: string[], opts: TransferOptions): Promise<number> {
  const transfers = await plan(kind, paths, opts);
  const request: SubmitJobRequest = { kind, transfers, checksum: opts.checksum, ...(opts.allowInsecureRedirect ? { allowInsecureRedirect: true } : {}), ...stageOptions(opts),
    ...(opts.skipExisting ? { skipExisting: true } : {}), ...(opts.sync ? { sync: true } : {}),
    ...(opts.recursive ? { recursive: true } : {}), ...(opts.followSymlinks ? { followSymlinks: true } : {}) };
  const caches = cacheList(opts.cache);
  if (caches) request.caches = caches;
  if (kind === 'copy') {
    request.copyMode = opts.mode ?? 'pull';
    if (opts.overwrite) request.overwrite = true;
    if (opts.fallback) request.fallback = opts.fallback;
  }
  const warn = (warnings: string[]) => {
    if (!opts.json) for (const w of warnings) process.stderr.write(`petrel: warning: ${w}\n`);
  };
  if (kind === 'copy' && (opts.srcToken || opts.dstToken)) {
    if (!opts.srcToken || !opts.dstToken || opts.token) throw new PetrelError('USAGE', 'give --src-token and --dst-token together, or --token for both sides');
    request.sourceToken = await readTokenFile(opts.srcToken);
    request.token = await readTokenFile(opts.dstToken);
    // The source token reads, and for --stage also recalls, at the source.
    warn((await checkToken(request.sourceToken, tokenUses(request).filter((n) => n.side === 'source').map((n) => ({ op: n.operation, url: n.url })))).warnings);
    warn((await checkToken(request.token, transfers.map((t) => ({ op: 'write' as const, url: new URL(t.destination) })))).warnings);
  } else {
    await attachToken(request, opts);
  }
  const json = Boolean(opts.json);
  const quiet = json || Boolean(opts.quiet);
  if (request.stage) return submitToAgent(request, { json, quiet, wait: !opts.async || Boolean(opts.wait) });
  return opts.async ? submitToAgent(request, { json, quiet, wait: Boolean(opts.wait) }) : runInProcess(request, { json, quiet });
}

async function submitToAgent(request: SubmitJobRequest, opts: { json: boolean; quiet: boolean; wait: boolean }): Promise<number> {
  const client = agentClient();
  try {
    const { started } = await ensureAgent(client);
    if (started && !opts.quiet) process.stderr.write('petrel: started the agent\n');
    if (!request.token && process.stdin.isTTY && process.stderr.isTTY && !opts.json) await warmIfNeeded(client, request);
    const { id } = await client.submit(request);
    if (!opts.wait) {
      if (opts.json) printJson({ id });
      else print(id);
      return EXIT.ok;
    }
    if (!opts.json) process.stderr.write(`petrel: job ${id} queued\n`);
    const source: JobSource = { events: (jobId, signal) => client.events(jobId, signal, { transfers: 'false' }), detail: (jobId, q) => client.job(jobId, q) };
    const final = await followJob(source, id, { quiet: opts.quiet });
    return await reportOutcome(source, final, opts.json);
  } finally {
    await client.close();
  }
}

/**
 * Before queueing on a terminal: where the agent could not get a token for a configured prefix
 * (no credential, a dead one, a closed wallet), do the interactive part now, once per prefix,
 * instead of letting the job wait.
 */
async function warmIfNeeded(client: AgentClient, request: SubmitJobRequest): Promise<void> {
  const [{ loadConfig }, { resolvePaths }, { issuerFor }] = await Promise.all([
    import('../../src/config.js'),
    import('../../src/paths.js'),
    import('../../src/auth/index.js'),
  ]);
  const config = await loadConfig(resolvePaths().configFile);
  const firstUrlPerPrefix = new Map<string, { url: URL; operation: Operation }>();
  for (const t of request.transfers) {
    for (const side of tokenUses({ ...request, transfers: [t] })) {
      const setting = issuerFor(config.issuers, side.url);
      const key = `${setting?.prefix}\n${side.operation}`;
      if (setting && !firstUrlPerPrefix.has(key)) firstUrlPerPrefix.set(key, side);
    }
  }
  for (const { url, operation } of firstUrlPerPrefix.values()) {
    const missing = await client.token({ url: url.href, operation }).then(
      () => undefined,
      (e: unknown) => (e instanceof PetrelError && WAITING_CODES.has(e.code) ? e : undefined),
    );
    if (!missing) continue;
    process.stderr.write(`petrel: ${missing.message}\n`);
    const actions = await import('./wallet-actions.js');
    if (missing.code === 'WALLET_CLOSED') await actions.open(undefined, {});
    else await (await import('./warm-actions.js')).warm([url.href], { write: operation === 'write', stage: operation === 'stage' });
  }
}

async function runInProcess(request: SubmitJobRequest, opts: { json: boolean; quiet: boolean }): Promise<number> {
  const [{ createJobService }, { createAgentEngine, createConfiguredRouter, locate }, { loadConfig }, { resolvePaths }, { silentLogger }] = await Promise.all([
    import('../../src/jobs/index.js'),
    import('../../src/federation/index.js'),
    import('../../src/config.js'),
    import('../../src/paths.js'),
    import('../../src/log.js'),
  ]);
  const config = await loadConfig(resolvePaths().configFile);
  const router = createConfiguredRouter(config);
  // An explicit token serves both sides of a copy (its source falls back to it), as in the agent.
  const tokens = request.token ? explicitTokens() : await agentTokenSource();
  const service = createJobService({
    database: ':memory:',
    engine: createAgentEngine(config, router),
    locate: (url, op) => locate(router, url, op),
    config,
    logger: silentLogger,
    runId: randomUUID(),
    ...(tokens ? { tokensFor: tokens.tokensFor } : {}),
  });
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    service.start();
    const job = service.submit({ ...request, checksum: request.checksum ?? 'adler32' });
    const source: JobSource = { events: (id, signal) => service.follow(id, signal, { transfers: false }), detail: async (id, q) => service.detail(id, q) };
    const final = await followJob(source, job.id, { quiet: opts.quiet, signal: interrupt.signal });
    if (interrupt.signal.aborted) {
      process.stderr.write('petrel: interrupted; run the same command again to resume\n');
      return EXIT.interrupted;
    }
    return await reportOutcome(source, final, opts.json);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await service.stop();
    await tokens?.close();
  }
}

/** The job's explicit tokens as stored, by the resolver's rules (a copy's source falls back to the one token). */
function explicitTokens(): { tokensFor(task: TransferTask): Promise<Pick<TransferTask, 'token' | 'sourceToken'>>; close(): Promise<void> } {
  const none = createTokenResolver([]);
  return {
    tokensFor: (task) => tokensForTask(task, { token: task.token, sourceToken: task.sourceToken ?? null }, none),
    close: async () => undefined,
  };
}

/**
 * Without an explicit token, a foreground transfer borrows the tokens of the agent's open
 * wallet (the agent refreshes them; nothing is prompted for mid-transfer). Undefined when no
 * agent runs or its wallet is closed: then no token is sent, as before there was a wallet.
 */
async function agentTokenSource(): Promise<{ tokensFor(task: TransferTask): Promise<Pick<TransferTask, 'token' | 'sourceToken'>>; close(): Promise<void> } | undefined> {
  const client = agentClient();
  const open = await client.wallet().then((w) => w.open, () => false);
  if (!open) {
    await client.close();
    return undefined;
  }
  // Nobody is there to act on a waiting job in the foreground: fail it with the hint.
  const resolver = createTokenResolver([
    agentSource(client, {
      onWaiting: (e) => {
        throw new PetrelError('TRANSFER_DENIED', e.message, { hint: e.hint });
      },
    }),
  ]);
  return {
    tokensFor: (task) => tokensForTask(task, { token: task.token, sourceToken: task.sourceToken ?? null }, resolver),
    close: () => client.close(),
  };
}
