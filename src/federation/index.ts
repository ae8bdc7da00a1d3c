export { cachePreference, createFederatedEngine } from './engine.js';
export { federatedObject, OSDF_DISCOVERY, type FederatedObject } from './objects.js';
export { createRouter, type CachePreference, type FederatedOperation, type FederationRouter, type Namespace, type Route } from './router.js';
export type { TokenGeneration } from './headers.js';
export { createAgentEngine, createConfiguredRouter } from './configured.js';
export { checkTokenIssuer, namespacePrefix, scopedPath, scopePathToAsk, warmTargetFor } from './tokens.js';
export { locate, type LocateOperation, type Located } from './locate.js';
