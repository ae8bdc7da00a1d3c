import { statSync } from 'node:fs';
import type { TransferSpec } from '../../src/api/index.js';
import { KIND_SIDES, type TransferKind } from '../../src/domain.js';
import { PetrelError } from '../../src/errors.js';
import { intoDirectory, locationText, parseLocation, type Location } from '../../src/transfer/index.js';

/** The commands that move data: get, put, copy. */
export type Direction = TransferKind;

export interface PairInput {
  source: string;
  /** Missing: the command line's destination, taken as a directory. */
  destination?: string | undefined;
}

/** What each command does, for its usage errors. */
const VERB: Record<Direction, string> = {
  get: 'downloads a URL to a local path',
  put: 'uploads a local file to a URL',
  copy: 'copies between two storages (third-party copy)',
};

const OTHER_COMMAND: Record<Direction, string> = {
  get: 'to upload, use `petrel put`; to copy between storages, `petrel copy`',
  put: 'to download, use `petrel get`',
  copy: 'to download, use `petrel get`; to upload, `petrel put`',
};

function isLocalDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function check(kind: Direction, side: 'source' | 'destination', loc: Location, text: string): void {
  if (loc.kind !== KIND_SIDES[kind][side].location) {
    throw new PetrelError('USAGE', `\`petrel ${kind}\` ${VERB[kind]}: ${text} cannot be its ${side}`, { hint: OTHER_COMMAND[kind] });
  }
  // A local source is a file to upload: it must be there, and be a file.
  if (side === 'source' && loc.kind === 'local') {
    let isFile = false;
    try {
      isFile = statSync(loc.path).isFile();
    } catch {
      throw new PetrelError('USAGE', `${loc.path} does not exist`, { hint: 'check the path of the file to upload' });
    }
    if (!isFile) throw new PetrelError('USAGE', `${loc.path} is not a regular file`, { hint: 'name files, not directories' });
  }
}

/**
 * Turns command-line sources and destinations into exact source → destination pairs: a
 * destination that is a directory (exists as one, ends in `/`, or receives several sources)
 * gets each source's file name.
 */
export function planTransfers(kind: Direction, pairs: readonly PairInput[], defaultDestination?: string, cwd = process.cwd()): TransferSpec[] {
  const defaultCount = pairs.filter((p) => p.destination === undefined).length;
  return pairs.map((p) => {
    const destText = p.destination ?? defaultDestination;
    if (destText === undefined) throw new PetrelError('USAGE', `no destination for ${p.source}`, { hint: 'give a destination on the command line or on the line' });
    const source = parseLocation(p.source, cwd);
    let destination = parseLocation(destText, cwd);
    check(kind, 'source', source, p.source);
    check(kind, 'destination', destination, destText);
    const isDir =
      destText.endsWith('/') ||
      (p.destination === undefined && defaultCount > 1) ||
      (destination.kind === 'local' && isLocalDir(destination.path));
    if (isDir) destination = intoDirectory(destination, source);
    return { source: locationText(source), destination: locationText(destination) };
  });
}

/** `SRC [DEST]` a line; blank lines and `#` comments skipped. */
export function parsePairList(text: string, file: string): PairInput[] {
  const pairs: PairInput[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    if (parts.length > 2) throw new PetrelError('USAGE', `${file}:${i + 1}: expected "SRC [DEST]", found ${parts.length} fields`, { hint: 'percent-encode spaces in URLs' });
    pairs.push({ source: parts[0] as string, destination: parts[1] });
  });
  if (!pairs.length) throw new PetrelError('USAGE', `${file} lists no transfers`);
  return pairs;
}

/** `petrel prestage SRC...`: each a URL; a recall names its file twice (it has no destination). */
export function planRecalls(sources: readonly string[]): TransferSpec[] {
  if (!sources.length) throw new PetrelError('USAGE', '`petrel prestage` needs the URLs of the files to recall', { hint: 'petrel prestage URL... (or --from-file FILE)' });
  return sources.map((text) => {
    const loc = parseLocation(text);
    if (loc.kind !== 'remote') throw new PetrelError('USAGE', `\`petrel prestage\` recalls files on a storage: ${text} is a local path`, { hint: 'give the URL of the file on the tape-backed storage' });
    const url = locationText(loc);
    return { source: url, destination: url };
  });
}
