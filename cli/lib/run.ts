import { reportError } from './output.js';

/** Runs a command body and sets the exit code from its result or its error. */
export async function runCommand(json: boolean, body: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await body();
  } catch (e) {
    process.exitCode = reportError(e, json);
  }
}
