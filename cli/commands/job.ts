import { Option, type Command } from 'commander';
import { RUN_STATES } from '../../src/domain.js';
import { runCommand } from '../lib/run.js';

export function register(program: Command): void {
  const job = program.command('job').summary('list, follow, cancel and retry jobs of the agent');
  const action = (name: 'list' | 'status' | 'wait' | 'cancel' | 'retry') => (...args: unknown[]) => {
    const cmd = args.at(-1) as Command;
    const opts = cmd.opts<{ json?: boolean }>();
    return runCommand(Boolean(opts.json), async () => {
      const impl = await import('../lib/job-actions.js');
      return impl[name](args[0] as never, opts as never);
    });
  };
  job
    .command('list')
    .description('list jobs, newest first')
    .addOption(new Option('--state <state>', 'only jobs in this state').choices(RUN_STATES))
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'machine-readable output')
    .action(action('list'));
  job.command('status').argument('<id>').description("a job's state, counts and transfers").option('--all', 'list every transfer').option('--json', 'machine-readable output').action(action('status'));
  job.command('wait').argument('<id>').description('follow a job until it ends; exit 1 if it failed').option('-q, --quiet', 'no progress output').option('--json', 'machine-readable output').action(action('wait'));
  job.command('cancel').argument('<id>').description('stop a job; partial files are removed').option('--json', 'machine-readable output').action(action('cancel'));
  job.command('retry').argument('<id>').description('re-queue the failed transfers of a finished job').option('--json', 'machine-readable output').action(action('retry'));
}
