import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface DiscoveredToken {
  token: string;
  /** Where it was found, for messages (never the token itself). */
  from: string;
}

type Env = Record<string, string | undefined>;

async function readToken(path: string): Promise<string | undefined> {
  try {
    const t = (await readFile(path, 'utf8')).trim();
    return t || undefined;
  } catch {
    return undefined;
  }
}

/**
 * WLCG Bearer Token Discovery: BEARER_TOKEN, BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u<uid>,
 * /tmp/bt_u<uid>; the first that exists wins. Such tokens are unmanaged: used as given.
 */
export async function discoverBearerToken(env: Env = process.env, uid = process.getuid?.() ?? 0): Promise<DiscoveredToken | undefined> {
  const inline = env.BEARER_TOKEN?.trim();
  if (inline) return { token: inline, from: 'BEARER_TOKEN' };
  const candidates: [string, string][] = [];
  if (env.BEARER_TOKEN_FILE) candidates.push([env.BEARER_TOKEN_FILE, 'BEARER_TOKEN_FILE']);
  if (env.XDG_RUNTIME_DIR) candidates.push([join(env.XDG_RUNTIME_DIR, `bt_u${uid}`), `$XDG_RUNTIME_DIR/bt_u${uid}`]);
  candidates.push([`/tmp/bt_u${uid}`, `/tmp/bt_u${uid}`]);
  for (const [path, from] of candidates) {
    const token = await readToken(path);
    if (token) return { token, from };
  }
  return undefined;
}
