import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { PetrelError } from '../../src/errors.js';

export interface PasswordOptions {
  passwordStdin?: boolean;
  passwordFile?: string;
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += Buffer.from(chunk as Uint8Array).toString('utf8');
  return text;
}

/** Reads a password on the terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  const input = process.stdin;
  return new Promise((resolve, reject) => {
    let value = '';
    // Echo off before the prompt shows: what is typed once it shows must never appear.
    input.setRawMode(true);
    process.stderr.write(question);
    input.resume();
    const done = (err?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new PetrelError('USAGE', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    input.on('data', onData);
  });
}

let stdinLines: string[] | undefined;

/**
 * A password, the way every wallet command takes it: --password-file F, --password-stdin (one
 * line each, in order), or a hidden prompt on a terminal. Never from an argument.
 */
export async function readPassword(opts: PasswordOptions, prompt: string, { confirm = false } = {}): Promise<string> {
  let password: string | undefined;
  if (opts.passwordFile) {
    password = (await readFile(opts.passwordFile, 'utf8').catch((e: unknown) => {
      throw new PetrelError('USAGE', `cannot read the password file ${opts.passwordFile}: ${(e as Error).message}`);
    })).split('\n')[0];
  } else if (opts.passwordStdin) {
    stdinLines ??= (await readStdin()).split('\n');
    password = stdinLines.shift();
  } else if (process.stdin.isTTY) {
    password = await promptHidden(prompt);
    if (confirm && (await promptHidden('again: ')) !== password) throw new PetrelError('USAGE', 'the two passwords differ');
  } else {
    throw new PetrelError('USAGE', 'no terminal to ask for the wallet password on', { hint: 'use --password-stdin or --password-file FILE' });
  }
  if (!password) throw new PetrelError('USAGE', 'the wallet password is empty');
  return password;
}

/** `8h`, `30m`, `90s`, `2d`, or plain seconds. */
export function parseLifetime(text: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!m) throw new PetrelError('USAGE', `not a lifetime: ${text}`, { hint: 'e.g. 8h, 30m, 2d' });
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = Number(m[1]) * unit;
  if (seconds < 1) throw new PetrelError('USAGE', 'the lifetime must be at least one second');
  return seconds;
}

/** The password options every command that opens or changes the wallet takes. */
export const withPasswordOptions = (cmd: Command): Command =>
  cmd.option('--password-stdin', 'read the wallet password (one line each) from standard input').option('--password-file <file>', 'read the wallet password from a file');
