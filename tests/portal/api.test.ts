import { describe, expect, it } from 'vitest';
import { Api, ApiError, CSRF_HEADER, describeError, formatWait } from '../../src/portal/lib/api';

interface Call {
  url: string;
  init: RequestInit;
}

/** A fetch stand-in (unit tests only): records requests and answers from a script. */
function stubFetch(answer: (call: Call) => Response = () => Response.json({ ok: true })): {
  fetch: typeof fetch;
  calls: Call[];
} {
  const calls: Call[] = [];
  const fetchImpl: typeof fetch = (input, init) => {
    // The portal passes paths as strings.
    const call = { url: input as string, init: init ?? {} };
    calls.push(call);
    return Promise.resolve(answer(call));
  };
  return { fetch: fetchImpl, calls };
}

const headerOf = (call: Call, name: string): string | undefined =>
  (call.init.headers as Record<string, string> | undefined)?.[name];

describe('the portal API client', () => {
  it('sends the CSRF token on every POST, PUT, PATCH and DELETE, and never on GET', async () => {
    const { fetch, calls } = stubFetch();
    const api = new Api({ fetch });
    api.setCsrfToken('csrf-123');
    await api.get('/api/public/portal/slots');
    await api.send('POST', '/api/public/portal/slots/abcdefghij/start');
    await api.send('PUT', '/api/public/portal/prefs', { version: 1 });
    await api.send('PATCH', '/api/public/portal/keys/k_0123456789', { name: 'x' });
    await api.send('DELETE', '/api/public/portal/shares/sh_0123456789');
    expect(calls.map((call) => [call.init.method, headerOf(call, CSRF_HEADER)])).toEqual([
      ['GET', undefined],
      ['POST', 'csrf-123'],
      ['PUT', 'csrf-123'],
      ['PATCH', 'csrf-123'],
      ['DELETE', 'csrf-123'],
    ]);
    for (const call of calls) expect(call.init.credentials).toBe('same-origin');
  });

  it('sends JSON bodies as JSON, and a mutation without a token still carries the (empty) header', async () => {
    const { fetch, calls } = stubFetch();
    const api = new Api({ fetch });
    await api.send('POST', '/api/public/auth/sign-in', { login: 'ada', password: 'correct horse battery' });
    expect(headerOf(calls[0]!, 'content-type')).toBe('application/json');
    expect(JSON.parse(calls[0]!.init.body as string)).toEqual({ login: 'ada', password: 'correct horse battery' });
    expect(headerOf(calls[0]!, CSRF_HEADER)).toBe('');
  });

  it("turns the agent's {error: {code, message}} into an ApiError with its words and the wait of a throttle", async () => {
    const { fetch } = stubFetch(
      () =>
        new Response(JSON.stringify({ error: { code: 'AUTH_THROTTLED', message: 'Too many failed sign-ins.' } }), {
          status: 429,
          headers: { 'retry-after': '120' },
        }),
    );
    const error = await new Api({ fetch })
      .send('POST', '/api/public/auth/sign-in', {})
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('AUTH_THROTTLED');
    expect((error as ApiError).retryAfterSeconds).toBe(120);
    expect(describeError(error)).toBe('Too many failed sign-ins. Try again in 2 minutes.');
  });

  it('keeps a message that already says how long to wait as it is', () => {
    const error = new ApiError('AUTH_THROTTLED', 429, 'Wait 30 seconds before trying again.', 30);
    expect(describeError(error)).toBe('Wait 30 seconds before trying again.');
    expect(describeError(new ApiError('AUTH_ACCOUNT_LOCKED', 423, 'This account is locked. Ask the admin.'))).toBe(
      'This account is locked. Ask the admin.',
    );
  });

  it('says the agent cannot be reached when fetch fails, and names the status of a non-JSON failure', async () => {
    const down = new Api({ fetch: () => Promise.reject(new TypeError('Failed to fetch')) });
    await expect(down.get('/api/public/auth/session')).rejects.toThrow('Could not reach the agent');
    const proxy = new Api({ fetch: stubFetch(() => new Response('<html>Bad gateway</html>', { status: 502 })).fetch });
    await expect(proxy.get('/api/public/auth/session')).rejects.toMatchObject({ code: 'HTTP_502', status: 502 });
  });

  it('tells the app when the session is gone (expired, revoked, signed out elsewhere), not on other refusals', async () => {
    let lost = 0;
    const codes = ['AUTH_SESSION_REQUIRED', 'AUTH_CSRF_REFUSED', 'AUTH_SESSION_EXPIRED', 'PORTAL_KEY_LIMIT'];
    let index = 0;
    const { fetch } = stubFetch(() =>
      Response.json({ error: { code: codes[index++], message: 'no' } }, { status: 401 }),
    );
    const api = new Api({ fetch, onSessionLost: () => (lost += 1) });
    for (const _ of codes) await api.get('/api/public/portal/me').catch(() => undefined);
    expect(lost).toBe(2);
  });

  it('formats waits in the largest whole unit, rounded up', () => {
    expect(formatWait(1)).toBe('1 second');
    expect(formatWait(59)).toBe('59 seconds');
    expect(formatWait(61)).toBe('2 minutes');
    expect(formatWait(3600)).toBe('1 hour');
    expect(formatWait(3601)).toBe('2 hours');
  });
});
