import type { IpPermission } from '@aws-sdk/client-ec2';

/** The first inbound rule that lets in more than TCP 22 from single IPv4 addresses, described; null when none. */
export function widerRule(rules: IpPermission[]): string | null {
  for (const rule of rules) {
    const ports =
      rule.IpProtocol === '-1' ? 'all traffic' : `${rule.IpProtocol} ${rule.FromPort ?? '*'}-${rule.ToPort ?? '*'}`;
    const onlySsh = rule.IpProtocol === 'tcp' && rule.FromPort === 22 && rule.ToPort === 22;
    const sources = [
      ...(rule.IpRanges ?? []).map((r) => r.CidrIp ?? ''),
      ...(rule.Ipv6Ranges ?? []).map((r) => r.CidrIpv6 ?? ''),
      ...(rule.PrefixListIds ?? []).map((p) => p.PrefixListId ?? ''),
      ...(rule.UserIdGroupPairs ?? []).map((g) => g.GroupId ?? ''),
    ];
    for (const source of sources)
      if (!onlySsh || !/^(\d{1,3}\.){3}\d{1,3}\/32$/.test(source)) return `${ports} from ${source}`;
    if (!onlySsh && sources.length === 0) return ports;
  }
  return null;
}
