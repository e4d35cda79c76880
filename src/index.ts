/** shoal: sessions any node can serve, realtime gateways, and a runtime for clustered Node apps. */

export type { Bus, BusMessage } from './bus/contract.js';
export { createBus, DEFAULT_BUS_URL } from './bus/index.js';
export { defineApp, type NodeContext, type ShoalApp, type WebNode } from './cli/app-module.js';
export { defineConfig, type ShoalConfig } from './cli/config-file.js';
export { parseDuration } from './core/duration.js';
export * from './core/errors.js';
export { hashId } from './core/ids.js';
export { createPublisher, type Publisher, type Target } from './realtime/publisher.js';
export { type ClientScopeOptions, defineClientScope } from './session/client-scope.js';
export type { EncryptionOptions } from './session/encryption.js';
export type { EndedSnapshot, EndInfo, SessionEndHandler } from './session/lifecycle.js';
export type { LockContext, LockOptions } from './session/lock.js';
export { defineSession, type SessionInfo, SessionManager } from './session/manager.js';
export type { SessionOptions, SessionSchema, SessionStartContext, SessionValidators } from './session/options.js';
export { type CookieAction, Session } from './session/session.js';
export type { EndReason, SessionStore, StoreCapabilities, StoredSession } from './stores/contract.js';
export { createStore, DEFAULT_STORE_URL } from './stores/index.js';
