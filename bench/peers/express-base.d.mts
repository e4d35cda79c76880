import type { Express } from 'express';

export function expressApp(node: string): Express;

export function listenUntilSignal(
  app: Express,
  at: { port: number; host: string },
  name: string,
  cleanup?: () => Promise<unknown>,
): void;
