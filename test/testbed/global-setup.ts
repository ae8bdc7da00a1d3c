// vitest globalSetup: one test bed for the whole run. Tests get its JSON description with
// `inject('testbed')` and use the helpers of ./index.js (mintToken, stopServer, ...) from their
// own worker process.
import type { TestProject } from 'vitest/node';
import { startTestbed, type TestbedInfo } from './index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    testbed: TestbedInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { stop, ...info } = await startTestbed();
  project.provide('testbed', info);
  return async () => {
    await stop();
  };
}
