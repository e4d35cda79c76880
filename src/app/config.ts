/**
 * `shoal.config.ts` (or .mjs/.js) in the working directory: defaults for the CLI.
 * Precedence, highest first: command-line flags, SHOAL_* environment variables, this file.
 */
export interface ShoalConfig {
  /** The app module, as --app. */
  app?: string;
  /** `shoal start`: web nodes, gateways, balancer port. */
  web?: number;
  gateways?: number;
  port?: number;
  /** SHOAL_* settings (SHOAL_STORE, SHOAL_BUS, SHOAL_ORIGINS, …); a variable already set in the environment wins. */
  env?: Record<string, string>;
}

export function defineConfig(config: ShoalConfig): ShoalConfig {
  return config;
}
