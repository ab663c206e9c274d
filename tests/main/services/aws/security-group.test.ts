import { describe, expect, it } from 'vitest';
import { widerRule } from '../../../../src/main/services/aws/security-group';

const ssh = (source: Record<string, unknown>) => ({ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, ...source });

describe('a reused security group lets in SSH from single addresses only', () => {
  it('accepts TCP 22 from /32 addresses (and a group with no inbound rule)', () => {
    expect(widerRule([])).toBeNull();
    expect(widerRule([ssh({ IpRanges: [{ CidrIp: '198.51.100.7/32' }, { CidrIp: '203.0.113.9/32' }] })])).toBeNull();
  });

  it('names a range wider than /32, an IPv6 range, a prefix list or another group', () => {
    expect(widerRule([ssh({ IpRanges: [{ CidrIp: '0.0.0.0/0' }] })])).toBe('tcp 22-22 from 0.0.0.0/0');
    expect(widerRule([ssh({ IpRanges: [{ CidrIp: '198.51.100.7/32' }, { CidrIp: '10.0.0.0/8' }] })])).toBe(
      'tcp 22-22 from 10.0.0.0/8',
    );
    expect(widerRule([ssh({ Ipv6Ranges: [{ CidrIpv6: '::/0' }] })])).toBe('tcp 22-22 from ::/0');
    expect(widerRule([ssh({ PrefixListIds: [{ PrefixListId: 'pl-123' }] })])).toBe('tcp 22-22 from pl-123');
    expect(widerRule([ssh({ UserIdGroupPairs: [{ GroupId: 'sg-other' }] })])).toBe('tcp 22-22 from sg-other');
  });

  it('names any other port or protocol, even from a /32', () => {
    expect(
      widerRule([{ IpProtocol: 'tcp', FromPort: 0, ToPort: 65535, IpRanges: [{ CidrIp: '198.51.100.7/32' }] }]),
    ).toBe('tcp 0-65535 from 198.51.100.7/32');
    expect(widerRule([{ IpProtocol: '-1', IpRanges: [{ CidrIp: '198.51.100.7/32' }] }])).toBe(
      'all traffic from 198.51.100.7/32',
    );
    expect(widerRule([{ IpProtocol: 'udp', FromPort: 22, ToPort: 22 }])).toBe('udp 22-22');
  });
});
