import type { Command } from 'commander';
import { addTransferOptions, transferAction } from '../lib/transfer-options.js';

export function register(program: Command): void {
  addTransferOptions(
    program
      .command('put')
      .summary('upload files to storage')
      .description('Upload local SRC... to the URL DEST. Several sources (or a DEST ending in /) make DEST a directory.')
      .argument('[paths...]', 'SRC... DEST'),
  )
    .option('--follow-symlinks', 'with -r: follow symbolic links in the local tree (without it they are skipped)')
    .action(transferAction('put'));
}
