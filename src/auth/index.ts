export { discoverBearerToken, type DiscoveredToken } from './bearer-discovery.js';
export { createTokenBroker, issuerFor, renewalThreshold, type AcquiredToken, type RefreshOutcome, type TokenBroker } from './broker.js';
export { createOidc, type DeviceLogin, type Oidc } from './oidc.js';
export {
  agentSource,
  brokerSource,
  createTokenResolver,
  discoveredToken,
  discoverySource,
  noTokenError,
  operationsFor,
  tokenNeeds,
  tokensForTask,
  type AgentTokenClient,
  type ResolvedToken,
  type TokenResolver,
  type TokenSource,
} from './resolver.js';
export { neededScope, operationVerb, scopesToWarm, type Operation } from './scopes.js';
export { checkTokenFor, type TokenUse, type TokenVerdict } from './token-check.js';
export { createTokenService, type ResealTokens, type TokenService } from './token-service.js';
export { credentialId, storeCredential, warmOne, warmTargets, type WarmTarget } from './warm.js';
