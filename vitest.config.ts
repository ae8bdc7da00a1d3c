import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // dist/ holds compiled copies of test/testbed (tsconfig.build.json): never run those.
    exclude: [...configDefaults.exclude, 'dist/**'],
    // One XRootD/issuer test bed for the whole run; tests read it with inject('testbed').
    globalSetup: ['test/testbed/global-setup.ts'],
    // One file at a time: on two cores, files that write gigabytes (and fsync) beside files that
    // fsync a thousand small ones made both slow and flaky; run in sequence it is as fast overall.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
