export { createAgentClient, type AgentClient, type AgentClientOptions } from './client.js';
export * from './schemas.js';
