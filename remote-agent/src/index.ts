/** The agent as a library: what the panel (and tests) may build on. */
export { buildApp, findHostTools, type Agent, type AgentDeps } from './app.js';
export { loadConfig, ConfigError, type AgentConfig } from './config.js';
export { runAgent, readAgentState, type RunningAgent, type AgentState } from './server.js';
export * from './contract/index.js';
