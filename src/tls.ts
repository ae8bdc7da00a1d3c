import { existsSync, readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { PetrelError } from './errors.js';

const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The system's CA bundle plus PETREL_CA_FILE's certificates, as PEM texts. */
export function trustedCAs(caFile: string | undefined): string[] {
  const cas = existsSync(SYSTEM_BUNDLE) ? [readFileSync(SYSTEM_BUNDLE, 'utf8')] : [...rootCertificates];
  if (caFile) {
    try {
      cas.push(readFileSync(caFile, 'utf8'));
    } catch (e) {
      throw new PetrelError('USAGE', `cannot read the CA file ${caFile}: ${(e as Error).message}`, {
        hint: 'point PETREL_CA_FILE at a readable PEM file',
        cause: e,
      });
    }
  }
  return cas;
}
