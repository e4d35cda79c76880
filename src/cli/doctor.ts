import { createStore, DEFAULT_STORE_URL, redact } from '../stores/index.js';

/** Checks the configured backends and reports in words. Exit code 0 when all answer. */
export async function doctor(env: NodeJS.ProcessEnv): Promise<number> {
  let failures = 0;
  const storeUrl = env.SHOAL_STORE ?? DEFAULT_STORE_URL;
  const check = async (
    what: string,
    url: string,
    open: () => Promise<{ ping(): Promise<void>; close(): Promise<void> }>,
  ) => {
    const started = Date.now();
    try {
      const backend = await open();
      try {
        await backend.ping();
      } finally {
        await backend.close();
      }
      console.log(`ok    ${what} ${redact(url)} answered in ${Date.now() - started} ms`);
    } catch (err) {
      failures++;
      console.log(`FAIL  ${what} ${redact(url)}: ${(err as Error).message}`);
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof Error) console.log(`      cause: ${cause.message}`);
    }
  };
  await check('session store', storeUrl, () => createStore(storeUrl, { timeoutMs: 3000 }));
  if (env.SHOAL_BUS) {
    const busUrl = env.SHOAL_BUS;
    await check('message bus', busUrl, async () =>
      (await import('../bus/index.js')).createBus(busUrl, { timeoutMs: 3000 }),
    );
  }
  if (!env.SHOAL_SECRETS)
    console.log('warn  SHOAL_SECRETS is not set: nodes cannot verify each other’s session cookies');
  console.log(failures ? `${failures} problem(s) found` : 'everything answers');
  return failures ? 1 : 0;
}
