export { createJobService, type JobService, type JobServiceDeps } from './service.js';
export { backoffDelay } from './backoff.js';
