import type { PublicSiteOptions } from '../site/site.js';
import type { OpsEvents } from '../../ops/events.js';
import type { Logger } from 'pino';
import type { GatewayConfig, ModelPrice } from '../../config.js';
import type { QuotaStatus, UsageTotals } from '../../contract/index.js';
import type { TokenCounts } from '../usage/prices.js';
import type { UsageEvent } from '../usage/recorder.js';
import type { VerifyResult } from '../users/verifier.js';
import type { RateLimiter } from './rate-limiter.js';
import type { Refusal } from './refusal.js';
import type { GatewaySettings, UpstreamKeyStore } from './settings.js';

/** A running request's usage, counted against quotas until its row is committed. */
export interface QuotaHold {
  set(tokens: number, costUsd: number): void;
  release(): void;
}

/** What the gateway needs from the other modules, typed structurally so each can be tested alone. */
export interface GatewayDeps {
  config: GatewayConfig;
  logger: Logger;
  keys: { verify(raw: string | undefined): VerifyResult; touch(keyId: string): void };
  users: { find(id: string): { id: string; username: string; active: boolean; deleted: boolean } | null };
  limiter: RateLimiter;
  quotas: {
    check(userId: string, keyId: string | null): { ok: true } | { ok: false; quota: QuotaStatus; message: string };
    status(subject: 'user' | 'key', id: string): QuotaStatus[];
    /** Reserves `estimate` at once (capped by what is left of the budget), then follows the usage as it is known. */
    hold(userId: string, keyId: string | null, estimate?: { tokens: number; cost: number }): QuotaHold;
  };
  /** Prices a running stream's usage for its quota hold; names the models without a price. */
  prices: {
    cost(model: string, tokens: TokenCounts): number;
    price(model: string): ModelPrice | null;
    unpricedModels(): string[];
  };
  recorder: { record(event: UsageEvent): Promise<unknown> };
  usage: { totals(userId: string, keyId: string | null, sinceMs: number): UsageTotals };
  settings: GatewaySettings;
  upstreamKey: UpstreamKeyStore;
  now?: () => number;
  /** Told about every request whose key (or legacy mode) let it in: the idle auto-stop's activity clock. */
  onAuthenticated?: () => void;
  /** Told once about every request the gateway refuses (never the key itself), for the request log. */
  onRefused?: (refusal: Refusal) => void;
  /** Whether the data dir can be written (ops/storage.ts): while it cannot, /v1/messages is refused before upstream. */
  storage?: { readonly full: boolean };
  /** Operations events (gateway.exchange, gateway.refused, upstream.answer) for metrics and alerts. */
  ops?: OpsEvents;
  /** The end users' web front door (portal, sign-in, share pages) served beside the gateway's routes. */
  publicSite?: PublicSiteOptions;
}
