import { Option, type Command } from 'commander';
import { CHECKSUM_CHOICES, DEFAULT_CHECKSUM } from '../../src/domain.js';
import type { Direction } from './plan.js';
import { runCommand } from './run.js';

export function addTransferOptions(cmd: Command): Command {
  return cmd
    .option('--async', 'queue the job in the agent and print its id (starts the agent if needed)')
    .option('--wait', 'with --async: follow the job to its end')
    .option('--token <file>', 'bearer token file (default: WLCG bearer-token discovery)')
    .addOption(new Option('--checksum <algorithm>', 'checksum to verify').choices(CHECKSUM_CHOICES).default(DEFAULT_CHECKSUM))
    .option('--from-file <file>', 'read "SRC [DEST]" pairs, one a line')
    .option('-r, --recursive', 'whole directories, listed by the agent: SRC/dir goes to DEST/dir/, SRC/dir/ (trailing slash) puts its contents into DEST/')
    .option('--skip-existing', 'leave a destination that already holds the same file (same size; same checksum when both sides report one): it ends as skipped')
    .option('--sync', '--skip-existing, and replace a destination that differs')
    .option('--allow-insecure-redirect', 'follow redirects from https to plain http (the token never goes along)')
    .option('-q, --quiet', 'no progress output')
    .option('--json', 'machine-readable output');
}

/** get and copy: recall the sources from tape first. */
export function addStageOptions(cmd: Command): Command {
  return cmd
    .option('--stage', 'recall each source from tape first; each file moves as soon as it is on disk (runs in the agent)')
    .option('--disk-lifetime <duration>', 'with --stage: how long the storage keeps the files on disk: 6h, 2d, or ISO 8601 (PT6H)');
}

export function transferAction(kind: Direction) {
  return (paths: string[], opts: Record<string, unknown>) =>
    runCommand(Boolean(opts.json), async () => {
      const { runTransferCommand } = await import('./transfer-command.js');
      return runTransferCommand(kind, paths, opts as never);
    });
}
