#!/usr/bin/env node
// Prints the README's set-up commands, one a line, without their comments: the first code block
// under "## Set-up". CI runs exactly these, so what a newcomer copies is what is tested.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
const section = readme.split(/^## Set-up.*$/m)[1];
const block = section?.match(/^```[^\n]*\n([\s\S]*?)^```/m)?.[1];
if (!block) {
  process.stderr.write('readme-setup: no code block under "## Set-up" in README.md\n');
  process.exit(2);
}
const commands = block
  .split('\n')
  .map((line) => line.replace(/\s+#.*$/, '').trim())
  .filter(Boolean);
if (commands.length !== 2) {
  process.stderr.write(`readme-setup: expected two set-up commands, found ${commands.length}\n`);
  process.exit(2);
}
process.stdout.write(`${commands.join('\n')}\n`);
