import { Option, type Command } from 'commander';
import { COPY_MODES } from '../../src/domain.js';
import { addStageOptions, addTransferOptions, transferAction } from '../lib/transfer-options.js';

export function register(program: Command): void {
  addStageOptions(addTransferOptions(
    program
      .command('copy')
      .summary('copy between two storages (third-party copy: the data never passes through here)')
      .description('Copy SRC... to DEST with WebDAV COPY: the destination pulls (default) or the source pushes. Several sources (or a DEST ending in /) make DEST a directory.')
      .argument('[paths...]', 'SRC... DEST (URLs: https, http, davs, dav)')
      .addOption(new Option('--mode <mode>', 'which storage does the work').choices(COPY_MODES).default('pull'))
      .option('--overwrite', 'replace an existing destination file')
      .addOption(new Option('--fallback <mode>', 'when a storage refuses COPY (405/501): stream the data through petrel').choices(['streamed']))
      .option('--src-token <file>', "bearer token file for reading the source (with --dst-token)")
      .option('--dst-token <file>', 'bearer token file for writing the destination (with --src-token)'),
  )).action(transferAction('copy'));
}
