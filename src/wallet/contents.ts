import { z } from 'zod';

/** A client registration at one issuer (dynamic registration, or given by the user). */
export const ClientRegistration = z.object({
  issuer: z.string().url(),
  clientId: z.string().min(1),
  clientSecret: z.string().optional(),
});
export type ClientRegistration = z.infer<typeof ClientRegistration>;

/** An access token obtained for one scope set; `scope` is the sorted, space-separated set. */
export const CachedAccessToken = z.object({
  scope: z.string(),
  token: z.string().min(1),
  /** Epoch ms. */
  expiresAt: z.number(),
  /** Epoch ms when it was obtained: its lifetime decides when background refresh renews it. */
  issuedAt: z.number().optional(),
});
export type CachedAccessToken = z.infer<typeof CachedAccessToken>;

/** One credential: what it may be used for, and the tokens that prove it. */
export const Credential = z.object({
  id: z.string().min(1),
  issuer: z.string().url(),
  /** URL prefixes (storage namespaces) this credential serves. */
  prefixes: z.array(z.string()).default([]),
  /** The storage path that scope paths are relative to (the storage's `base_path`). */
  basePath: z.string().default('/'),
  scopes: z.array(z.string()).default([]),
  audience: z.string().optional(),
  /** Key of its client registration in `clients` (default: its issuer). */
  client: z.string().optional(),
  /** At most one per scope set the credential was asked for. */
  accessTokens: z.array(CachedAccessToken).default([]),
  refreshToken: z.string().optional(),
  obtainedBy: z.enum(['device', 'exchange', 'import']),
  /** Set when the issuer answered invalid_grant: the user must warm it again. */
  dead: z.boolean().default(false),
  updatedAt: z.number(),
});
export type Credential = z.infer<typeof Credential>;

export const WalletContents = z.object({
  /** By issuer for the client `petrel warm` registered; `issuer#clientId` for imported ones. */
  clients: z.record(z.string(), ClientRegistration).default({}),
  credentials: z.record(z.string(), Credential).default({}),
  /**
   * Random key (base64) that seals job tokens in the agent's database. It lives inside the
   * wallet so that a password change does not orphan what it sealed.
   */
  sealKey: z.string().optional(),
});
export type WalletContents = z.infer<typeof WalletContents>;

export const emptyContents = (): WalletContents => ({ clients: {}, credentials: {} });

/** When the credential's freshest access token expires (epoch ms), if it has one. */
export function latestExpiry(c: Credential): number | undefined {
  return c.accessTokens.reduce<number | undefined>((m, t) => (m === undefined || t.expiresAt > m ? t.expiresAt : m), undefined);
}
