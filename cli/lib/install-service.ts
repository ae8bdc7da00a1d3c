import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PetrelError } from '../../src/errors.js';
import { packageRoot } from '../../src/package-root.js';
import { AGENT_NODE_OPTIONS, CLI_MAIN } from './agent-process.js';
import { EXIT, print, printJson } from './output.js';

const UNITS = ['petrel-agent.socket', 'petrel-agent.service'] as const;

/** The unit files with this installation's node and petrel filled in. */
export function renderUnits(node = process.execPath, petrel = CLI_MAIN): Record<(typeof UNITS)[number], string> {
  const read = (name: string) => readFileSync(join(packageRoot(), 'systemd', name), 'utf8');
  return {
    'petrel-agent.socket': read('petrel-agent.socket'),
    'petrel-agent.service': read('petrel-agent.service').replace('@NODE@', [node, ...AGENT_NODE_OPTIONS].join(' ')).replace('@PETREL@', petrel),
  };
}

function systemctl(...args: string[]): void {
  const res = spawnSync('systemctl', ['--user', ...args], { encoding: 'utf8' });
  if (res.error || res.status !== 0) {
    throw new PetrelError('USAGE', `systemctl --user ${args.join(' ')} failed: ${(res.stderr || res.error?.message || '').trim()}`, {
      hint: 'is a systemd user session running (loginctl enable-linger $USER)? The unit files are written; enable them by hand later',
    });
  }
}

export async function installService(opts: { enable: boolean; dir?: string; json?: boolean }): Promise<number> {
  const dir = opts.dir ?? join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'systemd', 'user');
  mkdirSync(dir, { recursive: true });
  const units = renderUnits();
  const written = UNITS.map((name) => {
    const path = join(dir, name);
    writeFileSync(path, units[name], { mode: 0o644 });
    return path;
  });
  if (opts.enable) {
    systemctl('daemon-reload');
    systemctl('enable', '--now', 'petrel-agent.socket');
  }
  if (opts.json) printJson({ written, enabled: opts.enable });
  else {
    for (const p of written) print(`wrote ${p}`);
    print(opts.enable ? 'enabled petrel-agent.socket: the agent starts on the first request' : 'enable with: systemctl --user enable --now petrel-agent.socket');
  }
  return EXIT.ok;
}
