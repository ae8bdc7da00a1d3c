import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // dist/ holds compiled copies of test/testbed (tsconfig.build.json): never run those.
    exclude: [...configDefaults.exclude, 'dist/**'],
    // One XRootD/issuer test bed for the whole run; tests read it with inject('testbed').
    globalSetup: ['test/testbed/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
