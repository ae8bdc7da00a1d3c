import { z } from 'zod';

/** A client registration at one issuer (dynamic registration, or given by the user). */
export const ClientRegistration = z.object({
  issuer: z.string().url(),
  clientId: z.string().min(1),
  clientSecret: z.string().optional(),
});
export type ClientRegistration = z.infer<typeof ClientRegistration>;

/** One credential: what it may be used for, and the tokens that prove it. */
export const Credential = z.object({
  id: z.string().min(1),
  issuer: z.string().url(),
  /** URL prefixes (storage namespaces) this credential serves. */
  prefixes: z.array(z.string()).default([]),
  scopes: z.array(z.string()).default([]),
  audience: z.string().optional(),
  accessToken: z.string().optional(),
  /** Epoch ms. */
  accessTokenExpiresAt: z.number().optional(),
  refreshToken: z.string().optional(),
  obtainedBy: z.enum(['device', 'exchange', 'import']),
  /** Set when the issuer answered invalid_grant: the user must warm it again. */
  dead: z.boolean().default(false),
  updatedAt: z.number(),
});
export type Credential = z.infer<typeof Credential>;

export const WalletContents = z.object({
  clients: z.record(z.string(), ClientRegistration).default({}),
  credentials: z.record(z.string(), Credential).default({}),
});
export type WalletContents = z.infer<typeof WalletContents>;

export const emptyContents = (): WalletContents => ({ clients: {}, credentials: {} });
