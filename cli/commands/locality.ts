import type { Command } from 'commander';
import { runCommand } from '../lib/run.js';

export function register(program: Command): void {
  program
    .command('locality')
    .argument('<url...>', 'files on tape-backed storages')
    .summary('say whether files are on disk, on tape, or both (WLCG Tape REST archiveinfo)')
    .description(
      'Asks each storage where its files are: DISK, TAPE, DISK_AND_TAPE, NONE (an empty file), LOST or UNAVAILABLE, or the error (no such file). One call per storage; the token is --token FILE, else one for recalls (storage.stage) from the agent, else bearer-token discovery.',
    )
    .option('--token <file>', 'a bearer token file for every storage')
    .option('--json', 'an array of {url, path, locality} or {url, path, error}')
    .action((urls: string[], opts: { json?: boolean; token?: string }) =>
      runCommand(Boolean(opts.json), async () => (await import('../lib/locality-actions.js')).locality(urls, opts)),
    );
}
