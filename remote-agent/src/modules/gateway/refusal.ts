/**
 * A request the gateway refused (401, 403, 413, 429, 503 and the like), as the request log keeps it so that an admin
 * can answer "why did my call fail?". The gateway reports one through GatewayDeps.onRefused; the request log stores
 * it. Never holds the key itself or the request's body.
 */
export interface Refusal {
  /** When it was refused, ms since the epoch. */
  at: number;
  status: number;
  /** The stable code the client got (GATEWAY_KEY_REVOKED, GATEWAY_QUOTA_EXCEEDED...). */
  code: string;
  /** The message the client got. */
  message: string;
  /** Known once the key was recognised (a revoked or expired key still names its user). */
  userId: string | null;
  keyId: string | null;
  /** The key's visible prefix when the key was not recognised at all, else null. */
  keyPrefix: string | null;
  /** When the body had been read far enough to know it. */
  model: string | null;
  method: string;
  /** The path without its query string. */
  path: string;
  /** The client's address as the gateway saw it. */
  ip: string;
}
