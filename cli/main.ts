#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { register as agent } from './commands/agent.js';
import { register as copy } from './commands/copy.js';
import { register as datasets } from './commands/datasets.js';
import { register as get } from './commands/get.js';
import { register as job } from './commands/job.js';
import { register as locality } from './commands/locality.js';
import { register as prestage } from './commands/prestage.js';
import { register as put } from './commands/put.js';
import { register as wallet } from './commands/wallet.js';
import { register as warm } from './commands/warm.js';
import { packageVersion } from '../src/package-root.js';
import { EXIT } from './lib/output.js';

// A closed pipe (`petrel job list | head`) is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

const program = new Command('petrel')
  .description('Per-user transfer agent for token-secured scientific data federations')
  .version(packageVersion(), '-V, --version')
  .showSuggestionAfterError()
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(`petrel: ${text.replace(/^error: /, '')}`) });

for (const register of [get, put, copy, datasets, prestage, locality, job, warm, wallet, agent]) register(program);
for (const cmd of program.commands) {
  cmd.exitOverride();
  for (const sub of cmd.commands) sub.exitOverride();
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  else throw e;
}
