import type { Command } from 'commander';
import { runCommand } from '../lib/run.js';

const TOKEN = 'bearer token file (default: the agent\'s open wallet, else WLCG bearer-token discovery)';

export function register(program: Command): void {
  program
    .command('ls')
    .argument('<url...>', 'storage directories (or files)')
    .summary('list a storage directory: name, size, modification time, type (WebDAV PROPFIND)')
    .option('-l, --long', 'type, size and modification time')
    .option('--checksum <algorithm>', "also each file's checksum from the server (one HEAD each): adler32, md5, crc32c")
    .option('--token <file>', TOKEN)
    .option('--json', 'the entries as JSON')
    .action((urls: string[], opts: Record<string, unknown>) => runCommand(Boolean(opts.json), async () => (await import('../lib/dataset-actions.js')).ls(urls, opts as never)));

  program
    .command('stat')
    .argument('<url...>', 'storage files or directories')
    .summary("a file's type, size and modification time (and checksum, when asked)")
    .option('--checksum <algorithm>', "the server's checksum: adler32, md5, crc32c")
    .option('--token <file>', TOKEN)
    .option('--json', 'an array of entries')
    .action((urls: string[], opts: Record<string, unknown>) => runCommand(Boolean(opts.json), async () => (await import('../lib/dataset-actions.js')).stat(urls, opts as never)));

  program
    .command('rm')
    .argument('<url...>', 'storage files (or, with -r, directories)')
    .summary('remove files from storage (WebDAV DELETE); -r removes a directory tree')
    .option('-r, --recursive', 'remove directories with everything in them')
    .option('--force', 'allow removing the root of a storage or namespace (a path of one segment or none)')
    .option('--token <file>', 'bearer token file with storage.modify (default: the agent, else discovery)')
    .option('--json', 'the removed URLs as JSON')
    .action((urls: string[], opts: Record<string, unknown>) => runCommand(Boolean(opts.json), async () => (await import('../lib/dataset-actions.js')).rm(urls, opts as never)));
}
