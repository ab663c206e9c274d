import { describe, expect, it } from 'vitest';
import { EVENT_CHANNELS, INVOKE_CHANNELS, isEventChannel, isInvokeChannel } from '../../../src/shared/ipc/channels';
import { eventContract, ipcContract } from '../../../src/shared/ipc/contract';

describe('channel lists', () => {
  it('let through exactly the invoke channels the contract defines', () => {
    expect(new Set(INVOKE_CHANNELS)).toEqual(new Set(Object.keys(ipcContract)));
    expect(INVOKE_CHANNELS).toHaveLength(new Set(INVOKE_CHANNELS).size);
  });

  it('let through exactly the event channels the contract defines', () => {
    expect(new Set(EVENT_CHANNELS)).toEqual(new Set(Object.keys(eventContract)));
    expect(EVENT_CHANNELS).toHaveLength(new Set(EVENT_CHANNELS).size);
  });

  it('tell channel names from other strings', () => {
    expect(isInvokeChannel('hosts:list')).toBe(true);
    expect(isInvokeChannel('hosts:status')).toBe(false);
    expect(isInvokeChannel('shell:exec')).toBe(false);
    expect(isInvokeChannel(42)).toBe(false);
    expect(isEventChannel('hosts:status')).toBe(true);
    expect(isEventChannel('hosts:list')).toBe(false);
  });
});
