import { ShoalError } from '../core/errors.js';
import { loadApp } from './app-module.js';
import type { AppShapeReply } from './app-shape.js';
import { ensureTypeScript } from './ts-loader.js';

// Run by readAppShape (app-shape.ts) with the app module's path: loads it as a node would and answers
// over IPC, then exits, whatever the module left running.
const path = process.argv[2] ?? '';

function reply(message: AppShapeReply): void {
  process.send?.(message, () => process.exit(0));
}

try {
  await ensureTypeScript(path);
  const app = await loadApp(path);
  reply({ web: typeof app.web === 'function' });
} catch (err) {
  reply({ error: err instanceof ShoalError ? err.message : String(err) });
}
