/**
 * The portal's HTTP client for the agent's public API (/api/public/...): same-origin cookies, JSON, and on every
 * state-changing request the CSRF header with the token from GET /api/public/auth/session.
 */
export const CSRF_HEADER = 'x-slotdeck-csrf';

export class ApiError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    /** From Retry-After (throttled sign-ins): how long to wait. */
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ApiOptions {
  fetch?: typeof fetch;
  /** The session ended under the page (expired, revoked, signed out elsewhere): the app goes back to sign-in. */
  onSessionLost?: () => void;
}

const SESSION_LOST = new Set(['AUTH_SESSION_REQUIRED', 'AUTH_SESSION_EXPIRED']);

export class Api {
  private csrfToken: string | null = null;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: ApiOptions = {}) {
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
  }

  setCsrfToken(token: string | null): void {
    this.csrfToken = token;
  }

  get<T>(path: string, query?: Record<string, string>): Promise<T> {
    const search = query ? `?${new URLSearchParams(query).toString()}` : '';
    return this.request<T>('GET', path + search);
  }

  /** POST/PUT/PATCH/DELETE: always with the CSRF header (the agent refuses a state change without it). */
  send<T>(method: Exclude<Method, 'GET'>, path: string, body?: unknown): Promise<T> {
    return this.request<T>(method, path, body);
  }

  private async request<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET') headers[CSRF_HEADER] = this.csrfToken ?? '';
    let response: Response;
    try {
      response = await this.fetchImpl(path, {
        method,
        headers,
        credentials: 'same-origin',
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch {
      throw new ApiError('NETWORK', 0, 'Could not reach the agent. Check your connection, then try again.');
    }
    const text = await response.text();
    const parsed = parseJson(text);
    if (!response.ok) {
      const error = errorFromAnswer(response.status, parsed, response.headers.get('retry-after'));
      if (SESSION_LOST.has(error.code)) this.options.onSessionLost?.();
      throw error;
    }
    return parsed as T;
  }
}

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : null;
  } catch {
    return null;
  }
}

/** The agent's `{error: {code, message}}` as an ApiError; anything else as a plain HTTP failure. */
export function errorFromAnswer(status: number, body: unknown, retryAfter: string | null): ApiError {
  const error = (body as { error?: { code?: unknown; message?: unknown; retryAfterSeconds?: unknown } } | null)?.error;
  const seconds = retryAfterSecondsFrom(retryAfter, error?.retryAfterSeconds);
  if (error && typeof error.code === 'string' && typeof error.message === 'string')
    return new ApiError(error.code, status, error.message, seconds);
  return new ApiError(
    `HTTP_${status}`,
    status,
    status >= 500
      ? `The agent could not answer (HTTP ${status}). Try again in a moment.`
      : `The agent refused the request (HTTP ${status}).`,
    seconds,
  );
}

function retryAfterSecondsFrom(header: string | null, field: unknown): number | null {
  if (typeof field === 'number' && Number.isFinite(field) && field >= 0) return Math.ceil(field);
  if (header && /^\d+$/.test(header.trim())) return Number(header.trim());
  return null;
}

/** "3 minutes", "45 seconds", "2 hours": how long to wait, for the sign-in page. */
export function formatWait(seconds: number): string {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const hours = Math.ceil(minutes / 60);
  return `${hours} hour${hours === 1 ? '' : 's'}`;
}

/** What the page shows for a failed request: the agent's own words, plus the wait when it throttles. */
export function describeError(error: unknown): string {
  if (!(error instanceof ApiError)) return error instanceof Error ? error.message : String(error);
  if (error.code === 'AUTH_THROTTLED' && error.retryAfterSeconds !== null && !/\d/.test(error.message))
    return `${error.message} Try again in ${formatWait(error.retryAfterSeconds)}.`;
  return error.message;
}
