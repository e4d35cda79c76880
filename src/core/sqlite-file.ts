import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { ConfigError } from './errors.js';
import { importOptional } from './lazy-import.js';

/**
 * How the SQLite store and the SQLite bus name themselves: the file handling is
 * the same for both, only the words of their errors and the error class differ.
 */
export interface SqliteRole {
  /** "The SQLite session store", "The SQLite message bus". */
  feature: string;
  /** The setting that points at the file: SHOAL_STORE, SHOAL_BUS. */
  setting: string;
  /** The backends to move to when the lock is contended, e.g. "redis:// or postgres:// for heavy write traffic". */
  instead: string;
  /** The message of a call after close(). */
  closed: string;
  unavailable: new (backend: string, message: string, options?: { cause?: unknown }) => Error;
  /** A native addon that fails to load gets the rebuild advice, ending ", or <this>." */
  addonFallback: string;
}

export interface SqliteFile {
  db: BetterSqlite3.Database;
  /** ":memory:" or an empty path: private to this process. */
  anonymous: boolean;
  /** Names the file in errors: `sqlite (<absolute path>)`. */
  label: string;
  /**
   * Runs one synchronous call on the open file. better-sqlite3 is synchronous: a lock held
   * elsewhere past busy_timeout throws SQLITE_BUSY right here, and leaves as role.unavailable.
   */
  guard<T>(fn: () => T): T;
}

/**
 * Opens (creating its directory) the SQLite file at `path` in WAL mode with
 * busy_timeout = timeoutMs, and creates `schema` in it. `migrate` then brings tables an
 * earlier version created up to date, in the same write transaction.
 */
export async function openSqliteFile(
  path: string,
  timeoutMs: number,
  schema: string,
  role: SqliteRole,
  migrate?: (db: BetterSqlite3.Database) => void,
): Promise<SqliteFile> {
  const anonymous = path.trim() === '' || path.trim() === ':memory:';
  const file = anonymous ? ':memory:' : resolve(path);
  const label = `sqlite (${file})`;
  const db = await open(file, anonymous, timeoutMs, schema, role, migrate);
  return {
    db,
    anonymous,
    label,
    guard: (fn) => {
      if (!db.open) throw new role.unavailable(label, role.closed);
      try {
        return fn();
      } catch (err) {
        throw translate(label, timeoutMs, err, role);
      }
    },
  };
}

async function open(
  file: string,
  anonymous: boolean,
  timeoutMs: number,
  schema: string,
  role: SqliteRole,
  migrate: ((db: BetterSqlite3.Database) => void) | undefined,
): Promise<BetterSqlite3.Database> {
  const { default: Database } = await importOptional<{ default: typeof BetterSqlite3 }>(
    'better-sqlite3',
    `${role.feature} (${role.setting}=sqlite:…)`,
  );
  if (!anonymous) {
    try {
      mkdirSync(dirname(file), { recursive: true });
    } catch (err) {
      throw new ConfigError(
        `${role.feature} cannot create the directory ${dirname(file)} for ${file} (${(err as Error).message}). ` +
          `Point ${role.setting}=sqlite:<path> at a location this process may write to.`,
        { cause: err },
      );
    }
  }
  let db: BetterSqlite3.Database | undefined;
  try {
    // The constructor's timeout is SQLite's busy_timeout: it must be set before the WAL switch, which locks the file.
    const opened = new Database(file, { timeout: timeoutMs });
    db = opened;
    opened.pragma('journal_mode = WAL');
    opened.pragma('synchronous = NORMAL');
    // Several processes may start on a fresh file at once: the write lock makes the DDL run once, in turn.
    opened
      .transaction(() => {
        opened.exec(schema);
        migrate?.(opened);
      })
      .immediate();
    return opened;
  } catch (err) {
    db?.close();
    throw openError(file, timeoutMs, err, role);
  }
}

function openError(file: string, timeoutMs: number, err: unknown, role: SqliteRole): unknown {
  const e = err as NodeJS.ErrnoException;
  if (typeof e.code === 'string' && e.code.startsWith('SQLITE_BUSY'))
    return translate(`sqlite (${file})`, timeoutMs, err, role);
  if (!e.code?.startsWith('SQLITE_') && /bindings|NODE_MODULE_VERSION|\.node\b|dlopen/i.test(String(e.message))) {
    if (/Could not locate the bindings file/.test(String(e.message))) {
      // The list of every path tried follows on further lines: the first says it all.
      return new ConfigError(
        "better-sqlite3 is installed but its native addon was never built: its install script did not run (installed with --ignore-scripts, or by an npm that runs a dependency's install script only once the app allows it). " +
          `Run: npm install-scripts approve better-sqlite3 && npm rebuild better-sqlite3 (npm before 11.16: npm rebuild better-sqlite3), or ${role.addonFallback}.`,
        { cause: err },
      );
    }
    return new ConfigError(
      `better-sqlite3 is installed but its native addon did not load for Node ${process.version} (${e.message}). ` +
        `Run: npm rebuild better-sqlite3 (a C++ toolchain is needed when no prebuilt binary matches), or ${role.addonFallback}.`,
      { cause: err },
    );
  }
  return new ConfigError(
    `${role.feature} cannot open ${file} (${e.code ?? 'error'}: ${e.message}). ` +
      'Check that the path is a SQLite database (or does not exist yet) and that its directory is writable, ' +
      `or point ${role.setting}=sqlite:<path> elsewhere.`,
    { cause: err },
  );
}

/** SQLITE_* errors become role.unavailable with advice; anything else (a bug) passes through. */
function translate(label: string, timeoutMs: number, err: unknown, role: SqliteRole): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  const why =
    code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')
      ? `the database stayed locked by another connection for more than ${timeoutMs} ms. ` +
        `Raise timeoutMs, look for a process holding a long transaction, or use ${role.instead}.`
      : `${code}: ${(err as Error).message}. Check the file and its directory are writable and the disk is not full.`;
  return new role.unavailable(label, why, { cause: err });
}
