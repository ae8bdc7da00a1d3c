import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { PetrelError } from '../errors.js';
import { packageRoot } from '../package-root.js';
import * as schema from './schema.js';

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

export interface OpenDatabase {
  db: Db;
  sqlite: Database.Database;
  path: string;
  close(): void;
}

/**
 * Opens (creating if needed) the job database: mode 0600 in a 0700 directory, WAL, foreign keys,
 * migrations from migrations/ applied. `:memory:` gives a private database (in-process transfers).
 */
export function openDatabase(path: string): OpenDatabase {
  const inMemory = path === ':memory:';
  if (!inMemory) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Create the file 0600 before SQLite opens it, whatever the umask.
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
  }
  let sqlite: Database.Database;
  try {
    sqlite = new Database(path);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
  } catch (e) {
    throw new PetrelError('INTERNAL', `cannot open the job database ${path}: ${(e as Error).message}`, {
      hint: `move ${path} aside and start the agent again`,
      cause: e,
    });
  }
  const db = drizzle(sqlite, { schema });
  try {
    migrate(db, { migrationsFolder: join(packageRoot(), 'migrations') });
  } catch (e) {
    sqlite.close();
    throw new PetrelError('INTERNAL', `cannot migrate the job database ${path}: ${(e as Error).message}`, {
      hint: `a newer petrel may have written it; move ${path} aside to start afresh`,
      cause: e,
    });
  }
  if (!inMemory) {
    for (const side of ['-wal', '-shm']) if (existsSync(path + side)) chmodSync(path + side, 0o600);
  }
  return { db, sqlite, path, close: () => sqlite.close() };
}
