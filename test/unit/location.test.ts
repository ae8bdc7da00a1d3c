import { describe, expect, it } from 'vitest';
import type { PetrelError } from '../../src/errors.js';
import { thrown } from '../helpers/errors.js';
import { hostKey, intoDirectory, locationName, parseLocation, type Location } from '../../src/transfer/location.js';

function remoteUrl(loc: Location): URL {
  if (loc.kind !== 'remote') throw new Error(`expected a remote location, got ${loc.path}`);
  return loc.url;
}

function localPath(loc: Location): string {
  if (loc.kind !== 'local') throw new Error(`expected a local location, got ${loc.url.href}`);
  return loc.path;
}

describe('parseLocation', () => {
  it('keeps an https URL as https', () => {
    expect(remoteUrl(parseLocation('https://xrd.example.org:1094/store/a.root')).href).toBe('https://xrd.example.org:1094/store/a.root');
  });

  it('keeps an http URL as http', () => {
    expect(remoteUrl(parseLocation('http://xrd.example.org/a')).protocol).toBe('http:');
  });

  it('maps davs:// to https://, keeping host, port, path and query', () => {
    expect(remoteUrl(parseLocation('davs://xrd.example.org:1094/store/a.root?x=1')).href).toBe('https://xrd.example.org:1094/store/a.root?x=1');
  });

  it('maps dav:// to http://', () => {
    expect(remoteUrl(parseLocation('dav://xrd.example.org:8080/a')).href).toBe('http://xrd.example.org:8080/a');
  });

  it('accepts the scheme in any case', () => {
    expect(remoteUrl(parseLocation('DAVS://xrd.example.org/a')).protocol).toBe('https:');
  });

  it('turns a file: URL into a local path', () => {
    expect(parseLocation('file:///data/run1/a.root')).toEqual({ kind: 'local', path: '/data/run1/a.root' });
  });

  // Regression (found by this test): src/transfer/location.ts:13 uses `new URL(text).pathname`, which stays percent-encoded;
  // fileURLToPath would decode it. file:///tmp/a%20b.root names "/tmp/a b.root".
  it('decodes percent-escapes in a file: URL', () => {
    expect(localPath(parseLocation('file:///tmp/a%20b.root'))).toBe('/tmp/a b.root');
  });

  it('resolves a relative local path against the given cwd', () => {
    expect(parseLocation('out/a.root', '/home/u/work')).toEqual({ kind: 'local', path: '/home/u/work/out/a.root' });
  });

  it('resolves ./ and ../ in a local path', () => {
    expect(localPath(parseLocation('../x/./a.root', '/home/u/work'))).toBe('/home/u/x/a.root');
  });

  it('keeps an absolute local path, whatever the cwd', () => {
    expect(localPath(parseLocation('/data/a.root', '/home/u'))).toBe('/data/a.root');
  });

  it('treats a one-letter prefix before a colon as a path, not a scheme', () => {
    expect(parseLocation('C:/a.root', '/w').kind).toBe('local');
  });

  it('refuses an unsupported scheme with USAGE and a hint', () => {
    const e = thrown(() => parseLocation('root://xrd.example.org//store/a.root'));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain('root');
    expect(e.hint).toBeTruthy();
  });

  it('refuses s3:// with USAGE', () => {
    expect(thrown(() => parseLocation('s3://bucket/key')).code).toBe('USAGE');
  });

  it('refuses a URL that does not parse with USAGE', () => {
    expect(thrown(() => parseLocation('https://exa mple.org/a')).code).toBe('USAGE');
  });

  it('refuses a URL with no host with USAGE', () => {
    expect(thrown(() => parseLocation('https://')).code).toBe('USAGE');
  });

  it('refuses a URL with a bad port with USAGE', () => {
    expect(thrown(() => parseLocation('https://xrd.example.org:99999/a')).code).toBe('USAGE');
  });
});

describe('hostKey', () => {
  it('names port 443 for https without a port', () => {
    expect(hostKey(new URL('https://xrd.example.org/a'))).toBe('https://xrd.example.org:443');
  });

  it('names port 80 for http without a port', () => {
    expect(hostKey(new URL('http://xrd.example.org/a'))).toBe('http://xrd.example.org:80');
  });

  it('keeps an explicit port', () => {
    expect(hostKey(new URL('https://xrd.example.org:1094/a'))).toBe('https://xrd.example.org:1094');
  });

  it('gives the same key for an explicit default port and none', () => {
    expect(hostKey(new URL('https://xrd.example.org:443/a'))).toBe(hostKey(new URL('https://xrd.example.org/b')));
  });

  it('gives a davs:// URL the key of its https twin', () => {
    expect(hostKey(remoteUrl(parseLocation('davs://xrd.example.org/a')))).toBe('https://xrd.example.org:443');
  });

  it('tells http and https on the same host apart', () => {
    expect(hostKey(new URL('http://h.example.org:8443/'))).not.toBe(hostKey(new URL('https://h.example.org:8443/')));
  });

  it('ignores user, path and query', () => {
    expect(hostKey(new URL('https://u:p@h.example.org:1094/x/y?authz=abc'))).toBe('https://h.example.org:1094');
  });
});

describe('intoDirectory', () => {
  it('puts a remote source under a local directory by its file name', () => {
    const dest = intoDirectory({ kind: 'local', path: '/data/in' }, parseLocation('https://h.example.org/store/run1/a.root'));
    expect(dest).toEqual({ kind: 'local', path: '/data/in/a.root' });
  });

  it('decodes a percent-encoded remote name for a local file', () => {
    const dest = intoDirectory({ kind: 'local', path: '/data/in' }, parseLocation('https://h.example.org/store/a%20b.root'));
    expect(localPath(dest)).toBe('/data/in/a b.root');
  });

  it('ignores the source query when naming the file', () => {
    const dest = intoDirectory({ kind: 'local', path: '/data/in' }, parseLocation('https://h.example.org/store/a.root?authz=xyz'));
    expect(localPath(dest)).toBe('/data/in/a.root');
  });

  it('puts a local source under a remote directory by its file name', () => {
    const dest = intoDirectory(parseLocation('https://h.example.org/store/dir/'), { kind: 'local', path: '/data/a.root' });
    expect(remoteUrl(dest).href).toBe('https://h.example.org/store/dir/a.root');
  });

  it('adds a slash when the remote directory has none', () => {
    const dest = intoDirectory(parseLocation('https://h.example.org/store/dir'), { kind: 'local', path: '/data/a.root' });
    expect(remoteUrl(dest).pathname).toBe('/store/dir/a.root');
  });

  it('percent-encodes space, #, ? and % in a local name for a URL', () => {
    const dest = intoDirectory(parseLocation('https://h.example.org/dir/'), { kind: 'local', path: '/data/a b#1?%.root' });
    const url = remoteUrl(dest);
    expect(url.pathname).toBe('/dir/a%20b%231%3F%25.root');
    expect(url.search, 'a ? in the name must not start a query').toBe('');
    expect(url.hash, 'a # in the name must not start a fragment').toBe('');
  });

  it('keeps the remote directory query (e.g. authz) on the new URL', () => {
    const dest = intoDirectory(parseLocation('https://h.example.org/dir/?authz=t'), { kind: 'local', path: '/data/a.root' });
    expect(remoteUrl(dest).href).toBe('https://h.example.org/dir/a.root?authz=t');
  });

  it('round-trips a remote name: encoded into a URL, decoded back to the same local name', () => {
    const name = 'ünïcode & spaces %41.root';
    const up = intoDirectory(parseLocation('https://h.example.org/dir/'), { kind: 'local', path: `/data/${name}` });
    const down = intoDirectory({ kind: 'local', path: '/in' }, up);
    expect(localPath(down)).toBe(`/in/${name}`);
  });

  // Regression (found by this test): src/transfer/location.ts:37 decodes the last URL segment and :53 joins it into the
  // directory: %2F becomes "/" and "..%2F..%2Fescape" lands outside the destination directory.
  it('never places a remote source outside the local destination directory', () => {
    let placed: string | undefined;
    let code: string | undefined;
    try {
      placed = localPath(intoDirectory({ kind: 'local', path: '/data/in' }, parseLocation('https://h.example.org/d/..%2F..%2Fescape')));
    } catch (e) {
      code = (e as PetrelError).code;
    }
    if (code === undefined) expect(placed?.startsWith('/data/in/') && !placed.slice('/data/in/'.length).includes('/'), `placed at ${placed}`).toBe(true);
    else expect(code).toBe('USAGE');
  });
});

describe('locationName', () => {
  it('is the last segment of a local path', () => {
    expect(locationName({ kind: 'local', path: '/data/a.root' })).toBe('a.root');
  });

  it('refuses the local root with USAGE and a hint', () => {
    const e = thrown(() => locationName({ kind: 'local', path: '/' }));
    expect(e.code).toBe('USAGE');
    expect(e.hint).toBeTruthy();
  });

  it('refuses a URL with an empty path with USAGE', () => {
    expect(thrown(() => locationName(parseLocation('https://h.example.org'))).code).toBe('USAGE');
  });

  it('refuses a URL with only / as path with USAGE', () => {
    expect(thrown(() => locationName(parseLocation('https://h.example.org/'))).code).toBe('USAGE');
  });

  // Regression (found by this test): src/transfer/location.ts:37 uses path.basename, which drops a trailing slash, so
  // https://h/store/dir/ (a WebDAV collection) is named "dir" instead of being refused.
  it('refuses a URL naming a directory (trailing /) with USAGE', () => {
    expect(thrown(() => locationName(parseLocation('https://h.example.org/store/dir/'))).code).toBe('USAGE');
  });

  // Regression (found by this test): src/transfer/location.ts:37 calls decodeURIComponent unguarded: a stray % (e.g. "a%ZZ")
  // throws a bare URIError instead of a PetrelError.
  it.each([
    ['%2e%2e', 'decodes to ..'],
    ['%2E', 'decodes to .'],
    ['a%2Fb', 'holds a /'],
    ['a%00b', 'holds a NUL'],
    ['%2e%2e%2F%2e%2e%2Fetc', 'climbs out through encoded slashes'],
  ])('refuses a source name that %s (%s) with USAGE, so nothing lands outside DEST', (name) => {
    const e = thrown(() => intoDirectory({ kind: 'local', path: '/data/in' }, parseLocation(`https://h.example.org/store/${name}`)));
    expect(e.code).toBe('USAGE');
  });

  it('refuses a malformed percent-escape in a URL name with USAGE', () => {
    expect(thrown(() => locationName(parseLocation('https://h.example.org/store/a%ZZ.root'))).code).toBe('USAGE');
  });
});
