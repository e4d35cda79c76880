import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Examples and end-to-end tests import the package by name ('shoal', 'shoal/express', …), as a
 * user would. In the repo those names resolve to src/ through tsconfig.json's `paths` (tsx reads
 * them too); the same map serves vitest here.
 */
const tsconfig = JSON.parse(readFileSync(new URL('./tsconfig.json', import.meta.url), 'utf8')) as {
  compilerOptions: { paths: Record<string, [string]> };
};
const alias = Object.entries(tsconfig.compilerOptions.paths)
  // Longest first, so 'shoal/express' is not taken for 'shoal' + '/express'.
  .sort(([a], [b]) => b.length - a.length)
  .map(([name, [target]]) => ({
    find: new RegExp(`^${name.replace('/', '\\/')}$`),
    replacement: fileURLToPath(new URL(target, import.meta.url)),
  }));

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
