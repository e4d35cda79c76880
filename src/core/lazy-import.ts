import { MissingDependencyError } from './errors.js';

/**
 * Loads an optional peer dependency on first use, so apps only install the
 * client library of the backend they actually configure.
 */
export async function importOptional<T>(pkg: string, feature: string): Promise<T> {
  try {
    return (await import(pkg)) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
      throw new MissingDependencyError(pkg, feature, { cause: err });
    }
    throw err;
  }
}
