import { describe, expect, it } from 'vitest';
import { Dispatcher, type Handlers } from '../../../src/main/ipc/dispatch';
import { IpcError } from '../../../src/main/ipc/errors';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

function dispatcher(overrides: Partial<Handlers>): Dispatcher {
  return new Dispatcher(overrides as Handlers, silent);
}

describe('the IPC dispatcher', () => {
  it('refuses input that does not match the channel contract, naming each field, before any handler runs', async () => {
    let ran = false;
    const d = dispatcher({ 'hosts:connect': () => ((ran = true), Promise.reject(new Error('no'))) });
    const result = await d.dispatch('hosts:connect', { id: 'NOT VALID', extra: 1 });
    expect(result).toMatchObject({ ok: false, error: { code: 'IPC_INPUT_INVALID' } });
    if (!result.ok) {
      expect(result.error.message).toMatch(/id: must be a host id/);
      expect(result.error.message).toMatch(/extra/);
    }
    expect(ran).toBe(false);
  });

  it('passes a handler’s own error through with its code, message and details', async () => {
    const d = dispatcher({
      'hosts:connect': () =>
        Promise.reject(new IpcError('HOST_KEY_UNKNOWN', 'Check the fingerprint.', { fingerprint: 'SHA256:x' })),
    });
    expect(await d.dispatch('hosts:connect', { id: 'h-1' })).toEqual({
      ok: false,
      error: { code: 'HOST_KEY_UNKNOWN', message: 'Check the fingerprint.', details: { fingerprint: 'SHA256:x' } },
    });
  });

  it('turns an unexpected failure into IPC_INTERNAL with a message, never a stack', async () => {
    const d = dispatcher({ 'hosts:list': () => Promise.reject(new TypeError('cannot read x of undefined')) });
    const result = await d.dispatch('hosts:list', {});
    expect(result).toMatchObject({ ok: false, error: { code: 'IPC_INTERNAL' } });
    if (!result.ok) expect(result.error.message).not.toMatch(/at .*\.ts/);
  });

  it('cancels a running call: its handler sees the signal and the caller gets IPC_CANCELLED', async () => {
    let seen: AbortSignal | null = null;
    const d = dispatcher({
      'hosts:connect': (_input, { signal }) => {
        seen = signal;
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
      },
    });
    const pending = d.dispatch('hosts:connect', { id: 'h-1' }, 'request-1');
    d.cancel('request-1');
    expect(await pending).toMatchObject({ ok: false, error: { code: 'IPC_CANCELLED' } });
    expect(seen!.aborted).toBe(true);
  });
});
