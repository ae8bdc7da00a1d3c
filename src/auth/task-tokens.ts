import type { TransferTask } from '../transfer/task.js';
import type { Operation } from './scopes.js';

export type TokenSource = (need: { url: URL; operation: Operation; explicit: string | null }) => Promise<string | null>;

/**
 * The tokens one task needs, each from `acquire` with the right operation: a get reads its
 * source, a put writes its destination, a copy reads one side and writes the other (so one job
 * may span two issuers), a prestage stages. `explicit` are the job's own tokens, already readable.
 */
export async function tokensForTask(
  task: Pick<TransferTask, 'kind' | 'source' | 'destination'>,
  explicit: { token: string | null; sourceToken: string | null },
  acquire: TokenSource,
): Promise<Pick<TransferTask, 'token' | 'sourceToken'>> {
  switch (task.kind) {
    case 'get':
      return { token: await acquire({ url: new URL(task.source), operation: 'read', explicit: explicit.token }) };
    case 'put':
      return { token: await acquire({ url: new URL(task.destination), operation: 'write', explicit: explicit.token }) };
    case 'prestage':
      return { token: await acquire({ url: new URL(task.source), operation: 'stage', explicit: explicit.token }) };
    case 'copy': {
      const [token, sourceToken] = await Promise.all([
        acquire({ url: new URL(task.destination), operation: 'write', explicit: explicit.token }),
        acquire({ url: new URL(task.source), operation: 'read', explicit: explicit.sourceToken ?? explicit.token }),
      ]);
      return { token, sourceToken };
    }
  }
}
