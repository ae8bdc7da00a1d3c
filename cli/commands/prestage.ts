import type { Command } from 'commander';
import { runCommand } from '../lib/run.js';

export function register(program: Command): void {
  program
    .command('prestage')
    .argument('[urls...]', 'files on tape-backed storages')
    .summary('recall files from tape to disk (WLCG Tape REST API), batched by the agent')
    .description(
      'Asks each storage to bring the files from tape to disk. The agent groups the files of all jobs into few stage requests per tape endpoint and credential, polls them, and ends each file when it is on disk (or with the storage\'s error). Without --async the command follows the job to its end.',
    )
    .option('--from-file <file>', 'read one URL a line')
    .option('--async', 'print the job id and return at once')
    .option('--wait', 'with --async: follow the job to its end')
    .option('--token <file>', 'bearer token file with storage.stage (default: the wallet, else WLCG bearer-token discovery)')
    .option('--disk-lifetime <duration>', 'how long the storage keeps the files on disk: 6h, 2d, or ISO 8601 (PT6H)')
    .option('-q, --quiet', 'no progress output')
    .option('--json', 'machine-readable output')
    .action((urls: string[], opts: Record<string, unknown>) =>
      runCommand(Boolean(opts.json), async () => (await import('../lib/transfer-command.js')).runPrestageCommand(urls, opts as never)),
    );
}
