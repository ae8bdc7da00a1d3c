import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './src/jobs/schema.ts',
  out: './migrations',
});
