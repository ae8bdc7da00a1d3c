import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { discoverBearerToken } from '../../src/auth/bearer-discovery.js';

/** A uid no real user has, so /tmp/bt_u<uid> is ours alone. */
function freshUid(): number {
  return 4_242_000 + Math.floor(Math.random() * 900_000);
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'petrel-bt-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes /tmp/bt_u<uid>, removed when the test ends. */
async function tmpTokenFile(uid: number, text: string): Promise<string> {
  const file = `/tmp/bt_u${uid}`;
  onTestFinished(() => rm(file, { force: true }));
  await writeFile(file, text, { mode: 0o600 });
  return file;
}

describe('discoverBearerToken', () => {
  it('takes BEARER_TOKEN before every file', async () => {
    const uid = freshUid();
    const xdg = await tempDir();
    await writeFile(join(xdg, `bt_u${uid}`), 'from-xdg');
    await tmpTokenFile(uid, 'from-tmp');
    const file = join(xdg, 'tok');
    await writeFile(file, 'from-file');
    expect(await discoverBearerToken({ BEARER_TOKEN: 'inline', BEARER_TOKEN_FILE: file, XDG_RUNTIME_DIR: xdg }, uid)).toEqual({ token: 'inline', from: 'BEARER_TOKEN' });
  });

  it('strips white space around BEARER_TOKEN', async () => {
    expect((await discoverBearerToken({ BEARER_TOKEN: '  \tabc.def.ghi\n' }, freshUid()))?.token).toBe('abc.def.ghi');
  });

  it('passes over a BEARER_TOKEN of only white space', async () => {
    const uid = freshUid();
    await tmpTokenFile(uid, 'from-tmp');
    expect((await discoverBearerToken({ BEARER_TOKEN: ' \n ' }, uid))?.from).toBe(`/tmp/bt_u${uid}`);
  });

  it('reads BEARER_TOKEN_FILE, stripping white space, before the uid files', async () => {
    const uid = freshUid();
    const xdg = await tempDir();
    await writeFile(join(xdg, `bt_u${uid}`), 'from-xdg');
    const file = join(xdg, 'tok');
    await writeFile(file, '\n  from-file  \n');
    expect(await discoverBearerToken({ BEARER_TOKEN_FILE: file, XDG_RUNTIME_DIR: xdg }, uid)).toEqual({ token: 'from-file', from: 'BEARER_TOKEN_FILE' });
  });

  // protocols.md §6: "the first that exists wins".
  it('falls through to the uid files when BEARER_TOKEN_FILE names a missing file', async () => {
    const uid = freshUid();
    await tmpTokenFile(uid, 'from-tmp');
    expect(await discoverBearerToken({ BEARER_TOKEN_FILE: join(await tempDir(), 'missing') }, uid)).toEqual({ token: 'from-tmp', from: `/tmp/bt_u${uid}` });
  });

  it('reads $XDG_RUNTIME_DIR/bt_u<uid> before /tmp/bt_u<uid>', async () => {
    const uid = freshUid();
    const xdg = await tempDir();
    await writeFile(join(xdg, `bt_u${uid}`), 'from-xdg\n');
    await tmpTokenFile(uid, 'from-tmp');
    expect(await discoverBearerToken({ XDG_RUNTIME_DIR: xdg }, uid)).toEqual({ token: 'from-xdg', from: `$XDG_RUNTIME_DIR/bt_u${uid}` });
  });

  it('falls back to /tmp/bt_u<uid> when the XDG file is missing', async () => {
    const uid = freshUid();
    await tmpTokenFile(uid, ' from-tmp \n');
    expect(await discoverBearerToken({ XDG_RUNTIME_DIR: await tempDir() }, uid)).toEqual({ token: 'from-tmp', from: `/tmp/bt_u${uid}` });
  });

  it('reads /tmp/bt_u<uid> when XDG_RUNTIME_DIR is unset', async () => {
    const uid = freshUid();
    await tmpTokenFile(uid, 'from-tmp');
    expect((await discoverBearerToken({}, uid))?.token).toBe('from-tmp');
  });

  it('skips an empty XDG file and takes /tmp/bt_u<uid>', async () => {
    const uid = freshUid();
    const xdg = await tempDir();
    await writeFile(join(xdg, `bt_u${uid}`), ' \n');
    await tmpTokenFile(uid, 'from-tmp');
    expect((await discoverBearerToken({ XDG_RUNTIME_DIR: xdg }, uid))?.token).toBe('from-tmp');
  });

  it('finds nothing when no source exists', async () => {
    expect(await discoverBearerToken({ XDG_RUNTIME_DIR: await tempDir() }, freshUid())).toBeUndefined();
  });

  it('finds nothing when the only file is empty', async () => {
    const uid = freshUid();
    await tmpTokenFile(uid, '');
    expect(await discoverBearerToken({}, uid)).toBeUndefined();
  });

  it('reads the file of the uid given, not another uid', async () => {
    const uid = freshUid();
    await tmpTokenFile(uid, 'theirs');
    expect(await discoverBearerToken({}, uid + 1)).toBeUndefined();
  });

  it('never puts the token in `from`', async () => {
    const found = await discoverBearerToken({ BEARER_TOKEN: 'sekrit-value' }, freshUid());
    expect(found?.from).not.toContain('sekrit-value');
  });
});
