#!/usr/bin/env node
// Makes sure the Debian packages the Petrel test bed needs are installed (runs before the
// TypeScript build, so plain Node ESM with built-ins only). Quiet when everything is present;
// otherwise `apt-get update` once and `apt-get install -y` the missing ones, through sudo when
// not root. Exits non-zero, naming the packages, when that is impossible.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const PACKAGES = [
  'xrootd-server',
  'xrootd-server-plugins',
  'xrootd-scitokens-plugins',
  'xrootd-client',
  'davix',
  'gfal2-plugin-http',
  'gfal2-plugin-file',
  'gfal2-util-scripts',
  'python-is-python3', // gfal-copy needs /usr/bin/python
  'acl',
  'openssl',
  'curl',
  'ca-certificates',
  'systemd', // systemd-analyze verifies our unit files
];

function installed(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && /\binstall ok installed\b/.test(r.stdout);
}

function fail(msg) {
  process.stderr.write(`ensure-packages: ${msg}\n`);
  process.exit(1);
}

if (!existsSync('/usr/bin/dpkg-query')) {
  // Not Debian-like: only check for the binaries we use.
  const bins = ['/usr/bin/xrootd', '/usr/bin/openssl', '/usr/bin/curl', '/usr/bin/setfacl'];
  const absent = bins.filter((b) => !existsSync(b));
  if (absent.length) {
    fail(`no dpkg here and ${absent.join(', ')} missing; install the equivalents of: ${PACKAGES.join(' ')}`);
  }
  process.exit(0);
}

const missing = PACKAGES.filter((p) => !installed(p));
if (missing.length === 0) process.exit(0);

const isRoot = process.getuid?.() === 0;
let prefix = [];
if (!isRoot) {
  const sudo = ['/usr/bin/sudo', '/bin/sudo'].find((p) => existsSync(p));
  if (!sudo) {
    fail(`missing Debian packages: ${missing.join(' ')}\n` +
      `not root and no sudo; as root run: apt-get update && apt-get install -y ${missing.join(' ')}`);
  }
  // Prompt for a password only on a terminal; in CI a password-requiring sudo fails at once.
  prefix = process.stdin.isTTY ? [sudo] : [sudo, '-n'];
}

function run(args) {
  const [cmd, ...rest] = [...prefix, ...args];
  const r = spawnSync(cmd, rest, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return r.status === 0;
}

process.stderr.write(`ensure-packages: installing ${missing.join(' ')}\n`);
// sudo resets the environment, so pass DEBIAN_FRONTEND as an argument through env(1).
const aptEnv = ['env', 'DEBIAN_FRONTEND=noninteractive'];
if (!run([...aptEnv, 'apt-get', 'update'])) {
  fail(`apt-get update failed; install by hand: apt-get install -y ${missing.join(' ')}`);
}
if (!run([...aptEnv, 'apt-get', 'install', '-y', ...missing])) {
  fail(`apt-get install failed for: ${missing.join(' ')}`);
}
const still = missing.filter((p) => !installed(p));
if (still.length) fail(`still missing after apt-get install: ${still.join(' ')}`);
process.stderr.write('ensure-packages: done\n');
