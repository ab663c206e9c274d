import { describe, expect, it } from 'vitest';
import { gatewayRequestCounts, typedInput } from '../../../../remote-agent/src/modules/idle/activity.js';

describe('what keeps a host awake', () => {
  it('counts keys typed into a console', () => {
    expect(typedInput(Buffer.from('ls -l\r'))).toBe(true);
    expect(typedInput(Buffer.from('\x1b[A'))).toBe(true); // an arrow key
  });

  it('does not count the reports an open console sends by itself when a program queries it', () => {
    expect(typedInput(Buffer.from('\x1b[12;40R'))).toBe(false); // cursor position
    expect(typedInput(Buffer.from('\x1b[?1;2c'))).toBe(false); // device attributes
    expect(typedInput(Buffer.from('\x1b]11;rgb:0000/0000/0000\x1b\\'))).toBe(false); // background colour
    expect(typedInput(Buffer.from('\x1b[0n\x1b[12;40R'))).toBe(false);
    expect(typedInput(Buffer.alloc(0))).toBe(false);
  });

  it('counts a keystroke that arrives together with a report', () => {
    expect(typedInput(Buffer.from('\x1b[12;40Rq'))).toBe(true);
  });

  it('counts gateway requests made with a real key', () => {
    expect(gatewayRequestCounts({ keyed: true, method: 'POST', url: '/v1/messages' })).toBe(true);
    expect(gatewayRequestCounts({ keyed: true, method: 'GET', url: '/v1/me/quota' })).toBe(true);
  });

  it('does not count legacy mode (no key: any scanner gets in) nor listing the models', () => {
    expect(gatewayRequestCounts({ keyed: false, method: 'POST', url: '/v1/messages' })).toBe(false);
    expect(gatewayRequestCounts({ keyed: true, method: 'GET', url: '/v1/models' })).toBe(false);
    expect(gatewayRequestCounts({ keyed: true, method: 'GET', url: '/v1/models?limit=5' })).toBe(false);
    expect(gatewayRequestCounts({ keyed: true, method: 'GET', url: '/v1/models/claude-x' })).toBe(false);
  });
});
