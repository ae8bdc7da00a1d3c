import type { Command } from 'commander';
import { runCommand } from '../lib/run.js';

export function register(program: Command): void {
  const agent = program.command('agent').summary('run, start, stop and inspect the per-user agent');
  agent
    .command('run')
    .description('run the agent in the foreground (what systemd and `agent start` run)')
    .option('--log-file <file>', 'write the log here instead of stderr')
    .action((opts: { logFile?: string }) =>
      runCommand(false, async () => {
        const { runAgent } = await import('../../agent/main.js');
        await runAgent({ logFile: opts.logFile });
        return 0;
      }),
    );
  agent
    .command('start')
    .description('start the agent in the background; a no-op when one already runs')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => runCommand(Boolean(opts.json), async () => (await import('../lib/agent-actions.js')).start(opts)));
  agent
    .command('stop')
    .description('stop the agent; running transfers resume at its next start')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => runCommand(Boolean(opts.json), async () => (await import('../lib/agent-actions.js')).stop(opts)));
  agent
    .command('status')
    .description("the agent's pid, socket, database and queue")
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => runCommand(Boolean(opts.json), async () => (await import('../lib/agent-actions.js')).status(opts)));
  agent
    .command('install-service')
    .description('install the systemd user units (socket activation) and enable the socket')
    .option('--no-enable', 'only write the unit files')
    .option('--dir <dir>', 'where to write the units (default: $XDG_CONFIG_HOME/systemd/user)')
    .option('--json', 'machine-readable output')
    .action((opts: { enable: boolean; dir?: string; json?: boolean }) =>
      runCommand(Boolean(opts.json), async () => (await import('../lib/install-service.js')).installService(opts)),
    );
}
