import { expect } from 'vitest';
import { PetrelError } from '../../src/errors.js';

/** The PetrelError `fn` throws; fails the test when it returns or throws anything else. */
export function thrown(fn: () => unknown): PetrelError {
  try {
    fn();
  } catch (e) {
    expect(e, 'a PetrelError, not a foreign error').toBeInstanceOf(PetrelError);
    return e as PetrelError;
  }
  throw new Error('expected a PetrelError, but nothing was thrown');
}
