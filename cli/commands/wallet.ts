import type { Command } from 'commander';
import { withPasswordOptions } from '../lib/password.js';
import { runCommand } from '../lib/run.js';

type Action = 'init' | 'open' | 'close' | 'status' | 'list' | 'passwd' | 'remove';


export function register(program: Command): void {
  const wallet = program.command('wallet').summary('the encrypted wallet of credentials the agent uses');
  const action = (name: Action) => (...args: unknown[]) => {
    const cmd = args.at(-1) as Command;
    const opts = cmd.opts<{ json?: boolean }>();
    return runCommand(Boolean(opts.json), async () => (await import('../lib/wallet-actions.js'))[name](args.length > 2 ? (args[0] as string) : undefined, opts as never));
  };
  withPasswordOptions(wallet.command('init').description('create the wallet (asks for a new password)')).option('--json', 'machine-readable output').action(action('init'));
  withPasswordOptions(wallet.command('open').description("open the wallet in the agent, so it can use and refresh credentials"))
    .option('--lifetime <duration>', 'close it again after this long (e.g. 8h)')
    .option('--json', 'machine-readable output')
    .action(action('open'));
  wallet.command('close').description("close the agent's wallet: it forgets the key").option('--json', 'machine-readable output').action(action('close'));
  wallet.command('status').description('is there a wallet, is it open, until when').option('--json', 'machine-readable output').action(action('status'));
  wallet.command('list').description("the open wallet's credentials (never a secret)").option('--json', 'machine-readable output').action(action('list'));
  withPasswordOptions(wallet.command('passwd').description('change the wallet password (old, then new)')).option('--json', 'machine-readable output').action(action('passwd'));
  withPasswordOptions(
    wallet
      .command('import')
      .description('bring a refresh token from oidc-agent or htgettoken into the wallet')
      .requiredOption('--issuer <url>', "the token's issuer (its endpoints come from its discovery document)")
      .requiredOption('--client-id <id>', 'the client the refresh token was issued to')
      .option('--client-secret-file <file>', "that client's secret")
      .option('--refresh-token-file <file>', 'the refresh token')
      .option('--access-token-file <file>', 'instead: an access token, traded for a refresh token by token exchange (RFC 8693)')
      .option('--scope <scope...>', 'storage scopes to ask for (default storage.read:/)')
      .option('--prefix <url>', 'the storage prefix it serves (default: the issuer setting in config.json)'),
  )
    .option('--json', 'machine-readable output')
    .action((...args: unknown[]) => {
      const opts = (args.at(-1) as Command).opts<{ json?: boolean }>();
      return runCommand(Boolean(opts.json), async () => (await import('../lib/warm-actions.js')).importCredential(undefined, opts as never));
    });
  withPasswordOptions(wallet.command('remove').argument('<entry>').description('remove one credential')).option('--json', 'machine-readable output').action(action('remove'));
}
