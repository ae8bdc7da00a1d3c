import type { TransferSpec } from '../api/index.js';
import { KIND_SIDES, type CopyMode, type JobKind } from '../domain.js';
import { PetrelError } from '../errors.js';
import { isAbsolute } from 'node:path';
import { hostKey, locationText, parseLocation, type Location } from '../transfer/index.js';
import type { NewTransfer } from './store.js';

function bad(index: number, message: string, hint?: string): PetrelError {
  return new PetrelError('API_BAD_REQUEST', `transfer ${index}: ${message}`, { hint });
}

/** The refusal of a transfer that would write what an earlier one of its job writes. */
export function duplicateDestination(index: number, earlier: number, destination: string): PetrelError {
  return bad(index, `transfer ${earlier} already writes ${destination}`, 'give each source its own destination');
}

/**
 * Checks transfers one at a time, as they arrive, against the job kind: local paths must be
 * absolute. (That no two write one destination, the job store checks as it stores them.) Built
 * for jobs of 100,000 transfers: a text already in normal form is kept (not copied), and host
 * keys are shared.
 */
export function createTransferPreparer(kind: JobKind, copyMode: CopyMode = 'pull'): (spec: TransferSpec, index: number) => NewTransfer {
  const { source: sourceRule, destination: destinationRule } = KIND_SIDES[kind];
  // A kind without a destination (a prestage) names its file twice: the destination is the source.
  const sides = { source: sourceRule.location, destination: (destinationRule ?? sourceRule).location };
  const hosts = new Map<string, string>();
  const hostOf = (url: URL): string => {
    const key = hostKey(url);
    const known = hosts.get(key);
    if (known !== undefined) return known;
    hosts.set(key, key);
    return key;
  };
  return (spec, i) => {
    let source: Location;
    let destination: Location;
    try {
      source = parseLocation(spec.source, '/');
      destination = parseLocation(spec.destination, '/');
    } catch (e) {
      throw bad(i, (e as Error).message, (e as PetrelError).hint);
    }
    for (const [side, loc] of [['source', source], ['destination', destination]] as const) {
      if (loc.kind !== sides[side]) {
        throw bad(i, `a ${kind} job needs a ${sides[side] === 'remote' ? 'URL' : 'local path'} as ${side}, not ${spec[side]}`);
      }
      // parseLocation resolved relative paths against `/`: the text itself must be absolute.
      if (loc.kind === 'local' && !isAbsolute(spec[side])) {
        throw bad(i, `the local path ${spec[side]} must be absolute`);
      }
    }
    if (!destinationRule && locationText(destination) !== locationText(source)) throw bad(i, `a ${kind} job has no destination: give the source again as its destination`);
    const dest = sameOr(spec.destination, locationText(destination));
    // The per-host limit counts against the storage that does the work: for a copy, the one
    // that receives the COPY.
    const bothRemote = source.kind === 'remote' && destination.kind === 'remote';
    const remote = bothRemote ? (copyMode === 'push' ? source : destination) : source.kind === 'remote' ? source : destination;
    if (remote.kind !== 'remote') throw bad(i, 'no URL in the transfer');
    return { source: sameOr(spec.source, locationText(source)), destination: dest, host: hostOf(remote.url) };
  };
}

/** All of a job's transfers at once (see createTransferPreparer). */
export function prepareTransfers(kind: JobKind, specs: readonly TransferSpec[], copyMode: CopyMode = 'pull'): NewTransfer[] {
  return specs.map(createTransferPreparer(kind, copyMode));
}

/** The text as given when it is already in normal form, so the request's string is kept, not a copy. */
function sameOr(given: string, normal: string): string {
  return given === normal ? given : normal;
}
