import { z } from 'zod';

/**
 * Stable error codes of the agent's HTTP API (DOMAIN_REASON). Clients branch on these, never on messages, so a
 * code is never renamed or reused for another meaning.
 */
export const AgentErrorCode = {
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  BODY_INVALID_JSON: 'BODY_INVALID_JSON',
  BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  MEDIA_TYPE_UNSUPPORTED: 'MEDIA_TYPE_UNSUPPORTED',
  ROUTE_NOT_FOUND: 'ROUTE_NOT_FOUND',
  REQUEST_URL_INVALID: 'REQUEST_URL_INVALID',
  AUTH_TOKEN_MISSING: 'AUTH_TOKEN_MISSING',
  AUTH_TOKEN_INVALID: 'AUTH_TOKEN_INVALID',
  SLOT_NOT_FOUND: 'SLOT_NOT_FOUND',
  SLOT_NAME_TAKEN: 'SLOT_NAME_TAKEN',
  SLOT_COMMAND_NOT_FOUND: 'SLOT_COMMAND_NOT_FOUND',
  SLOT_WORKDIR_INVALID: 'SLOT_WORKDIR_INVALID',
  SLOT_NOT_RUNNING: 'SLOT_NOT_RUNNING',
  SLOT_BUSY: 'SLOT_BUSY',
  SLOT_BACKEND_UNAVAILABLE: 'SLOT_BACKEND_UNAVAILABLE',
  SLOT_OWNER_FIXED: 'SLOT_OWNER_FIXED',
  SLOT_HOME_RESET_REQUIRED: 'SLOT_HOME_RESET_REQUIRED',
  TERMINAL_TICKET_MISSING: 'TERMINAL_TICKET_MISSING',
  TERMINAL_TICKET_INVALID: 'TERMINAL_TICKET_INVALID',
  TERMINAL_NOT_WEBSOCKET: 'TERMINAL_NOT_WEBSOCKET',
  TERMINAL_ORIGIN_REFUSED: 'TERMINAL_ORIGIN_REFUSED',
  USER_NOT_FOUND: 'USER_NOT_FOUND',
  USER_NAME_TAKEN: 'USER_NAME_TAKEN',
  USER_DELETED: 'USER_DELETED',
  USER_DISABLED: 'USER_DISABLED',
  KEY_NOT_FOUND: 'KEY_NOT_FOUND',
  KEY_NOT_ACTIVE: 'KEY_NOT_ACTIVE',
  USAGE_RANGE_INVALID: 'USAGE_RANGE_INVALID',
  SLOT_OWNER_REQUIRED: 'SLOT_OWNER_REQUIRED',
  SLOT_OWNER_NOT_FOUND: 'SLOT_OWNER_NOT_FOUND',
  GATEWAY_UPSTREAM_KEY_MISSING: 'GATEWAY_UPSTREAM_KEY_MISSING',
  GATEWAY_DISABLED: 'GATEWAY_DISABLED',
  SUPERVISOR_UNAVAILABLE: 'SUPERVISOR_UNAVAILABLE',
  AGENT_SHUTTING_DOWN: 'AGENT_SHUTTING_DOWN',
  INTERNAL_ERROR: 'INTERNAL_ERROR',
} as const;
export type AgentErrorCode = (typeof AgentErrorCode)[keyof typeof AgentErrorCode];

/** One problem found while validating a request, addressed by where it was found (`body.name`, `query.limit`). */
export const ValidationIssue = z.object({ path: z.string(), message: z.string() });
export type ValidationIssue = z.infer<typeof ValidationIssue>;

/** Every non-2xx response of the agent has this body. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    issues: z.array(ValidationIssue).optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;
