import type { Command } from 'commander';
import { addStageOptions, addTransferOptions, transferAction } from '../lib/transfer-options.js';

export function register(program: Command): void {
  addStageOptions(addTransferOptions(
    program
      .command('get')
      .summary('download files from storage')
      .description('Download SRC... to DEST. Several sources (or a DEST ending in /) make DEST a directory.')
      .argument('[paths...]', 'SRC... DEST (URLs: https, http, davs, dav, pelican, osdf)')
      .option('--cache <url>', 'federation reads: try this cache first (repeatable, in order); a trailing + (URL+) tries the director\'s caches after them', (v: string, all: string[] = []) => [...all, v]),
  )).action(transferAction('get'));
}
