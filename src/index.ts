/** shoal: sessions any node can serve, realtime gateways, and a runtime for clustered Node apps. */

export { defineConfig, type ShoalConfig } from './app/config.js';
export {
  type AppDefinition,
  type AppSessionOptions,
  type AuthorizeContext,
  defineApp,
  type NodeContext,
  type RealtimeApp,
  type RealtimeSchema,
  type WebContext,
  type WebNode,
} from './app/define.js';
export { booleanFromEnv, listFromEnv, nodeConfigFromEnv, sessionOptionsFromEnv } from './app/env.js';
export { type NodeConfig, type OpenedApp, openApp } from './app/open.js';
export { createWebNode, type RunnableWebNode } from './app/web.js';
export type { Bus, BusMessage } from './bus/contract.js';
export { busUrlFor, createBus, DEFAULT_BUS_URL } from './bus/index.js';
export { parseDuration } from './core/duration.js';
export * from './core/errors.js';
export { hashId } from './core/ids.js';
export { type Logger, silentLogger } from './core/logger.js';
export { type MetricsOption, metricsRegistry } from './core/metrics.js';
export type { SessionAttributes } from './realtime/authorize-context.js';
export {
  type ChannelsAnswer,
  createPublisher,
  type EventMap,
  type HistoryAnswer,
  type HistoryMessage,
  type HistoryOptions,
  type PresenceAnswer,
  type PresenceClient,
  type PresenceQueryOptions,
  type PresenceStats,
  type Publisher,
  type Target,
} from './realtime/publisher.js';
export { createRealtime, type Realtime, type RealtimeOptions } from './realtime/realtime.js';
export {
  type RequestContext,
  type RequestLimits,
  RpcError,
  type RpcHandler,
  type RpcProxyOptions,
} from './realtime/rpc-types.js';
export { type ClientScopeOptions, defineClientScope } from './session/client-scope.js';
export type { RequestSession, SessionData } from './session/data.js';
export type { EncryptionOptions } from './session/encryption.js';
export type { SessionEvents } from './session/events.js';
export type { EndedSnapshot, EndInfo, SessionEndHandler } from './session/lifecycle.js';
export type { SessionLifetime } from './session/lifetime.js';
export type { LockContext, LockOptions } from './session/lock.js';
export { defineSession, type SessionInfo, SessionManager } from './session/manager.js';
export type {
  SessionConfig,
  SessionOptions,
  SessionSchema,
  SessionStartContext,
  SessionValidators,
} from './session/options.js';
export { type CookieAction, Session } from './session/session.js';
export type { EndReason, SessionStore, StoreCapabilities, StoredSession } from './stores/contract.js';
export { createStore, DEFAULT_STORE_URL } from './stores/index.js';
