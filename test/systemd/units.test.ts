// The systemd user units as installed by `petrel agent install-service`, checked by systemd itself.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { CLI, makeHome, petrel } from '../helpers/agent.js';

const tb = inject('testbed');

describe('systemd units', () => {
  it('install-service writes units that `systemd-analyze --user verify` accepts without a warning', async () => {
    const h = await makeHome(tb);
    onTestFinished(() => h.cleanup());
    const dir = join(h.dir, 'units');
    const res = await petrel(h, ['agent', 'install-service', '--no-enable', '--dir', dir, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const service = await readFile(join(dir, 'petrel-agent.service'), 'utf8');
    expect(service).toContain(`ExecStart=${process.execPath} --max-semi-space-size=1 --initial-old-space-size=32 ${CLI} agent run`);
    expect(service).toMatch(/^UMask=0077$/m);
    expect(service).toMatch(/^NoNewPrivileges=yes$/m);
    const socket = await readFile(join(dir, 'petrel-agent.socket'), 'utf8');
    expect(socket).toMatch(/^ListenStream=%t\/petrel\/agent\.sock$/m);
    expect(socket).toMatch(/^SocketMode=0600$/m);

    const runtime = await mkdtemp('/tmp/pt-rt-');
    onTestFinished(() => rm(runtime, { recursive: true, force: true }));
    const verify = spawnSync('systemd-analyze', ['--user', 'verify', join(dir, 'petrel-agent.socket'), join(dir, 'petrel-agent.service')], {
      encoding: 'utf8',
      env: { ...process.env, XDG_RUNTIME_DIR: runtime },
    });
    expect(verify.error, 'systemd-analyze is installed (npm test installs systemd)').toBeUndefined();
    expect(verify.stderr.trim(), 'no warnings').toBe('');
    expect(verify.status).toBe(0);
  });
});
