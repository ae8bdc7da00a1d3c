import { caFileFromEnv, type AgentConfig } from '../config.js';
import { createConfiguredEngine, createHttpClient, type TransferEngine } from '../transfer/index.js';
import { createFederatedEngine } from './engine.js';
import { createRouter, type FederationRouter } from './router.js';

const controlClient = (config: AgentConfig) => createHttpClient({ caFile: caFileFromEnv(), idleTimeoutMs: config.idleTimeoutMs, connectTimeoutMs: config.connectTimeoutMs });

/** The router as config.json sets it up, on its own connection pool (director answers are small). */
export function createConfiguredRouter(config: AgentConfig): FederationRouter {
  return createRouter({ client: controlClient(config), federations: config.federations, ...config.federation });
}

/** The engine the agent and the CLI's foreground runs use: federation URLs routed, the rest straight to the HTTP engine. */
export function createAgentEngine(config: AgentConfig, router: FederationRouter = createConfiguredRouter(config)): TransferEngine {
  const inner = createConfiguredEngine(config);
  const http = controlClient(config);
  const engine = createFederatedEngine(inner, router, http);
  return { ...engine, close: async () => Promise.all([engine.close(), http.close()]).then(() => undefined) };
}
