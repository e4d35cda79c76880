import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { CONTROLS } from './http-control.js';
import { QUERIES } from './http-query.js';

/**
 * The server API's OpenAPI document, kept as one JSON file in docs/; the build copies it into dist/,
 * which is what the package ships. So: beside dist/realtime/ in a package, in docs/ in a checkout.
 */
const PLACES = [
  new URL('../server-api.openapi.json', import.meta.url),
  new URL('../../docs/server-api.openapi.json', import.meta.url),
];
export const OPENAPI_FILE: URL = PLACES.find((u) => existsSync(u)) ?? (PLACES[1] as URL);

let text: Promise<string> | undefined;

/** GET /openapi.json: the document, without the key (it holds no secret), read once. */
export async function sendOpenApi(res: ServerResponse): Promise<void> {
  text ??= readFile(OPENAPI_FILE, 'utf8');
  const body = await text.catch((err: unknown) => {
    text = undefined;
    throw err;
  });
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
  res.end(body);
}

/** Every path of the server API a gateway answers with the bearer key (all POST): what the document must list. */
export const SERVER_API_PATHS: readonly string[] = ['/publish', ...QUERIES.paths, ...CONTROLS.paths];
