import { Agent as UndiciAgent } from 'undici';
import type { UpstreamProblem, UpstreamTestResult } from '../../contract/index.js';

export interface UpstreamTestOptions {
  baseUrl: string;
  apiKey: string;
  timeoutMs?: number;
  now?: () => number;
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|EPROTO$|HOSTNAME_MISMATCH)/;
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

/** The first error code down a chain of causes (undici wraps the socket's error). */
function errorCode(error: unknown): string {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR_SOCKET') return code;
  }
  return 'unknown error';
}

/** Upstream's own words about a failure, without anything that looks like a key. */
function upstreamWords(body: string, apiKey: string): string {
  let words = body;
  try {
    const parsed = JSON.parse(body) as { error?: { type?: unknown; message?: unknown } };
    if (typeof parsed.error?.message === 'string') {
      words = `${typeof parsed.error.type === 'string' ? `${parsed.error.type}: ` : ''}${parsed.error.message}`;
    }
  } catch {
    // Not JSON (a proxy's HTML page): its start is still a hint.
  }
  return words
    .split(apiKey)
    .join('[key]')
    .replace(/\b(sk[-_][A-Za-z0-9_-]{9})[A-Za-z0-9_-]{8,}/g, '$1…')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
}

/**
 * One minimal real call to upstream with the organisation's key: the model list (one model), which needs a valid
 * key and costs no tokens. Tells the admin whether the gateway can work, and if not, why in words: a wrong key, no
 * route to upstream, TLS, a timeout. Never says the key.
 */
export async function testUpstream(options: UpstreamTestOptions): Promise<UpstreamTestResult> {
  const { baseUrl, apiKey } = options;
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const base = new URL(baseUrl);
  const path = `${base.pathname.replace(/\/+$/, '')}/v1/models?limit=1`;
  const dispatcher = new UndiciAgent({
    connect: { timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const testedAt = new Date(now()).toISOString();
  const answer = (
    ok: boolean,
    status: number | null,
    latencyMs: number | null,
    problem: UpstreamProblem | null,
    message: string,
  ): UpstreamTestResult => ({ ok, baseUrl, status, latencyMs, problem, message, testedAt });
  const started = performance.now();
  try {
    const response = await dispatcher.request({
      origin: base.origin,
      path,
      method: 'GET',
      headers: { 'x-api-key': apiKey, 'anthropic-version': '2023-06-01' },
    });
    const body = await response.body.text();
    const latencyMs = Math.round(performance.now() - started);
    const status = response.statusCode;
    if (status >= 200 && status < 300) {
      return answer(true, status, latencyMs, null, `Upstream answered in ${latencyMs} ms: the organisation key works.`);
    }
    const words = upstreamWords(body, apiKey);
    if (status === 401) {
      return answer(
        false,
        status,
        latencyMs,
        'key_rejected',
        `Upstream refused the organisation key (401${words ? `, ${words}` : ''}). Paste a valid key with "Replace key"; every gateway request fails until then.`,
      );
    }
    if (status === 403) {
      return answer(
        false,
        status,
        latencyMs,
        'forbidden',
        `Upstream accepted the key but refused it this call (403${words ? `, ${words}` : ''}). Check the key's workspace and permissions in the Anthropic Console.`,
      );
    }
    if (status === 429 || status === 529) {
      return answer(
        false,
        status,
        latencyMs,
        'busy',
        `Upstream is reachable but ${status === 429 ? 'rate-limiting the organisation' : 'overloaded'} (${status}). End users' calls may fail for now; test again in a minute.`,
      );
    }
    return answer(
      false,
      status,
      latencyMs,
      'upstream_error',
      `Upstream answered ${status}${words ? ` (${words})` : ''}. Check gateway.upstreamBaseUrl: it must be the API's base URL, such as https://api.anthropic.com.`,
    );
  } catch (error) {
    const code = errorCode(error);
    if (TIMEOUT_CODES.has(code)) {
      return answer(
        false,
        null,
        null,
        'timeout',
        `No answer from ${baseUrl} within ${Math.round(timeoutMs / 1000)} s (${code}). Check the host's network and firewall, then test again.`,
      );
    }
    if (TLS_CODES.test(code)) {
      return answer(
        false,
        null,
        null,
        'tls',
        `The TLS connection to ${baseUrl} failed (${code}). A proxy may be intercepting HTTPS, or the address is not an HTTPS server: check gateway.upstreamBaseUrl and the host's certificates.`,
      );
    }
    return answer(
      false,
      null,
      null,
      'unreachable',
      `Could not reach ${baseUrl} (${code}). Check gateway.upstreamBaseUrl, and the host's DNS, network and firewall.`,
    );
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}
