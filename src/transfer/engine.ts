import { PetrelError } from '../errors.js';
import { download } from './get.js';
import { createHttpClient, type HttpClientOptions } from './http.js';
import { removeFile } from './local-file.js';
import { upload } from './put.js';
import { partPath, type TransferEngine } from './task.js';

/** The HTTP engine: get and put over one pooled client. */
export function createHttpEngine(opts: HttpClientOptions = {}): TransferEngine {
  const client = createHttpClient(opts);
  return {
    async run(task, ctx) {
      switch (task.kind) {
        case 'get':
          return download(client, task, ctx);
        case 'put':
          return upload(client, task, ctx);
        default:
          throw new PetrelError('TRANSFER_REFUSED', `${task.kind} jobs are not supported by this agent yet`, { hint: 'upgrade petrel' });
      }
    },
    async discard(task) {
      // An upload cleans up after itself (see upload()): only what it wrote, never an older file.
      if (task.kind === 'get') await removeFile(partPath(task.destination));
    },
    async close() {
      await client.close();
    },
  };
}
