import { GatewayErrorCode, type GatewayErrorType } from '../../contract/index.js';

/**
 * The gateway's own errors that a retry can cure (x-should-retry: true); every other one is final
 * (x-should-retry: false), so that the SDKs and Claude Code fail at once instead of retrying a revoked key or a
 * used-up quota for minutes.
 */
export const RETRYABLE = new Set<GatewayErrorCode>([
  GatewayErrorCode.RATE_LIMITED,
  GatewayErrorCode.STREAMS_EXHAUSTED,
  GatewayErrorCode.BODY_TIMEOUT,
  GatewayErrorCode.UPSTREAM_TIMEOUT,
  GatewayErrorCode.UPSTREAM_UNREACHABLE,
  GatewayErrorCode.SHUTTING_DOWN,
  GatewayErrorCode.INTERNAL_ERROR,
]);

/** Errors that are not a refusal of the caller (the route does not exist, upstream failed): not in the request log. */
export const NOT_REFUSALS = new Set<GatewayErrorCode>([
  GatewayErrorCode.ROUTE_NOT_FOUND,
  GatewayErrorCode.UPSTREAM_TIMEOUT,
  GatewayErrorCode.UPSTREAM_UNREACHABLE,
  GatewayErrorCode.INTERNAL_ERROR,
]);

/** An answer the gateway gives itself, in Anthropic's error shape with a stable code. */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly type: GatewayErrorType,
    readonly code: GatewayErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Whose request it was, when the gateway knows though it admitted no caller (a revoked key's 401). */
    readonly subject: { userId: string; keyId: string } | null = null,
  ) {
    super(message);
  }
}

export function withHeaders(error: GatewayError, headers: Record<string, string>): GatewayError {
  return new GatewayError(
    error.status,
    error.type,
    error.code,
    error.message,
    { ...headers, ...error.headers },
    error.subject,
  );
}

/** Errors of Node's HTTP parser (the request never reached the routes), as the gateway answers them. */
export const CLIENT_ERRORS: Record<
  string,
  { status: number; type: GatewayErrorType; code: GatewayErrorCode; message: string }
> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    type: 'request_too_large',
    code: GatewayErrorCode.HEADERS_TOO_LARGE,
    message: 'The request headers are too large. Send smaller headers.',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    type: 'timeout_error',
    code: GatewayErrorCode.BODY_TIMEOUT,
    message: 'The request did not arrive in time. Check the network and send it again.',
  },
};

/** Status lines of the answers written straight to a socket. */
export const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};
