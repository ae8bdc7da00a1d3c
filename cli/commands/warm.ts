import type { Command } from 'commander';
import { withPasswordOptions } from '../lib/password.js';
import { runCommand } from '../lib/run.js';


export function register(program: Command): void {
  withPasswordOptions(
    program
      .command('warm')
      .argument('<url...>', 'storage URLs (or prefixes) you will transfer from or to')
      .summary('log in (device code) for storages, so queued jobs get tokens without you')
      .description('Log in at the issuer configured for each URL (device code: open a link, enter a code), store the credential in the wallet and open the wallet in the agent.')
      .option('--write', 'also ask for upload scopes (storage.create, storage.modify)')
      .option('--stage', 'also ask for tape recall (storage.stage)')
      .option('--no-agent', 'only fill the wallet; do not open it in the agent'),
  )
    .option('--json', 'machine-readable output')
    .action((urls: string[], opts: { json?: boolean }) =>
      runCommand(Boolean(opts.json), async () => (await import('../lib/warm-actions.js')).warm(urls, opts as never)),
    );

  withPasswordOptions(
    program
      .command('token')
      .argument('<url>')
      .summary('print a valid access token for a URL (for curl, gfal, xrdcp)')
      .option('--write', 'a token that may upload')
      .option('--stage', 'a token that may recall from tape'),
  )
    .option('--json', 'token, expiry and where it came from, as JSON')
    .action((url: string, opts: { json?: boolean }) =>
      runCommand(Boolean(opts.json), async () => (await import('../lib/warm-actions.js')).token(url, opts as never)),
    );
}
