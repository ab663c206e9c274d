import { describe, expect, it } from 'vitest';
import { endUserGatewayUrl, gatewayIsLocalOnly } from '../../../src/renderer/src/lib/gateway-url';

const status = (host: string, url: string) => ({ url, listen: { host, port: 7421 } });

describe('endUserGatewayUrl', () => {
  it('gives a remote host’s own address when its gateway listens on every interface', () => {
    const ssh = { kind: 'ssh' as const, address: 'claude.example.com' };
    expect(endUserGatewayUrl(status('0.0.0.0', 'http://127.0.0.1:7421'), ssh)).toBe('http://claude.example.com:7421');
    expect(endUserGatewayUrl(status('::', 'https://[::1]:7421'), { kind: 'ssh', address: '2001:db8::5' })).toBe(
      'https://[2001:db8::5]:7421',
    );
  });

  it('keeps the agent’s address for This computer and for a gateway bound to one address', () => {
    expect(endUserGatewayUrl(status('127.0.0.1', 'http://127.0.0.1:7421'), { kind: 'local', address: null })).toBe(
      'http://127.0.0.1:7421',
    );
    expect(endUserGatewayUrl(status('10.0.0.5', 'http://10.0.0.5:7421'), { kind: 'ssh', address: 'a.example' })).toBe(
      'http://10.0.0.5:7421',
    );
  });

  it('has no address when the gateway is off', () => {
    expect(endUserGatewayUrl({ url: null, listen: null }, { kind: 'ssh', address: 'a.example' })).toBeNull();
    expect(endUserGatewayUrl(undefined, undefined)).toBeNull();
  });

  it('tells a loopback-only gateway apart', () => {
    expect(gatewayIsLocalOnly(status('127.0.0.1', 'http://127.0.0.1:1'))).toBe(true);
    expect(gatewayIsLocalOnly(status('0.0.0.0', 'http://127.0.0.1:1'))).toBe(false);
  });
});
