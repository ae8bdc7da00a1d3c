// Runs `petrel warm` as a child process and approves its device code at the test bed's IdP,
// the way a user would in a browser.
import { spawn } from 'node:child_process';
import { approveDevice, type TestbedInfo } from '../testbed/index.js';
import { CLI, type CliResult, type Home } from './agent.js';

export async function warmWithApproval(tb: TestbedInfo, home: Home, args: string[], password: string, opts: { deny?: boolean } = {}): Promise<CliResult & { userCode: string }> {
  const child = spawn(process.execPath, [CLI, 'warm', ...args, '--password-stdin'], { env: home.env, stdio: ['pipe', 'pipe', 'pipe'] });
  // A new wallet asks for the password once on stdin (no confirmation without a terminal).
  child.stdin.end(`${password}\n`);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /enter the code (\S+)/.exec(stderr);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('close', () => reject(new Error(`petrel warm ended before showing a code: ${stderr}`)));
  });
  const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const userCode = await code;
    await approveDevice(tb, userCode, opts.deny ? { deny: true } : {});
    return { code: await exited, stdout, stderr, userCode };
  } finally {
    clearTimeout(timer);
  }
}
