import { PetrelError } from '../errors.js';

export function jobNotFound(id: string): PetrelError {
  return new PetrelError('JOB_NOT_FOUND', `no job ${id}`, { hint: 'list jobs with `petrel job list`' });
}
