#!/usr/bin/env node
// The `shoal` command (package.json "bin"): runs the compiled CLI that `npm run build` writes to dist/.
import('../dist/cli/main.js').catch((err) => {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error(
      'shoal: dist/ is missing — run "npm run build" first (or use "npx tsx src/cli/main.ts" in a checkout)',
    );
  } else {
    console.error(err);
  }
  process.exitCode = 1;
});
