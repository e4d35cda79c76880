import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

export function readText(req: IncomingMessage): Promise<string>;

export function sendJson(res: ServerResponse, node: string, status: number, body: unknown): void;

export type Route = { name: 'healthz' | 'session' | 'login'; url: URL } | { name: 'set'; url: URL; key: string };

export function routeOf(req: IncomingMessage): Route | undefined;

export function listenUntilSignal(
  listener: RequestListener,
  at: { port: number; host: string },
  name: string,
  cleanup?: () => Promise<unknown>,
): void;
