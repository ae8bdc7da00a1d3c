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
export function openDatabase(path: string, opts: { exclusive?: boolean } = {}): OpenDatabase {
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
    if (opts.exclusive) holdExclusively(sqlite, path);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    // Deleted and overwritten content (job tokens once sealed or done with) is zeroed, not left in free pages.
    sqlite.pragma('secure_delete = ON');
    sqlite.pragma('busy_timeout = 5000');
    // A 4 MiB page cache (better-sqlite3 builds with 16): the queue's queries are index lookups,
    // and taking a 100,000-transfer job otherwise grows the agent by the whole 16.
    sqlite.pragma('cache_size = -4096');
  } catch (e) {
    if (e instanceof PetrelError) throw e;
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

/**
 * One agent per database: an exclusive SQLite lock held for the connection's life. The kernel
 * drops it when the process dies, so a restart after `kill -9` is not kept waiting.
 */
function holdExclusively(sqlite: Database.Database, path: string): void {
  sqlite.pragma('busy_timeout = 1000');
  sqlite.pragma('locking_mode = EXCLUSIVE');
  try {
    sqlite.exec('BEGIN EXCLUSIVE; COMMIT;');
  } catch (e) {
    sqlite.close();
    if ((e as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      throw new PetrelError('AGENT_ALREADY_RUNNING', `another petrel agent is using the job database ${path}`, {
        hint: 'use that agent (is PETREL_SOCKET or XDG_RUNTIME_DIR set differently?), or stop it with `petrel agent stop`',
        cause: e,
      });
    }
    throw e;
  }
}
