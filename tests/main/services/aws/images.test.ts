import { describe, expect, it } from 'vitest';
import {
  architectureOf,
  imageParameter,
  ipv4InCidr,
  securityGroupName,
  suggestedUser,
} from '../../../../src/main/services/aws/images';

describe('launch and SSH helpers', () => {
  it('runs Graviton types on arm64 and everything else on x86_64', () => {
    for (const type of ['t4g.small', 'm7g.large', 'c6gn.xlarge', 'r8gd.large', 'x2gd.medium', 'a1.large'])
      expect(architectureOf(type), type).toBe('arm64');
    for (const type of ['t3.medium', 'g5.xlarge', 'm7i-flex.large', 'c7i.large', 'inf2.xlarge'])
      expect(architectureOf(type), type).toBe('x86_64');
  });

  it("reads the image ids from AWS's public SSM parameters", () => {
    expect(imageParameter('al2023', 'x86_64')).toBe(
      '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
    );
    expect(imageParameter('al2023', 'arm64')).toBe(
      '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64',
    );
    expect(imageParameter('ubuntu-24.04', 'x86_64')).toBe(
      '/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id',
    );
    expect(imageParameter('ubuntu-24.04', 'arm64')).toContain('/arm64/');
  });

  it('suggests the SSH user of the image family', () => {
    expect(suggestedUser({ name: 'al2023-ami-2023.9.20261120.0-kernel-6.1-x86_64' })).toBe('ec2-user');
    expect(suggestedUser({ name: 'amzn2-ami-kernel-5.10-hvm-2.0-x86_64-gp2' })).toBe('ec2-user');
    expect(suggestedUser({ name: 'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20261115' })).toBe(
      'ubuntu',
    );
    expect(suggestedUser({ name: 'debian-12-amd64-20261110-1500' })).toBe('admin');
    expect(suggestedUser({ name: null, ownerId: '099720109477' })).toBe('ubuntu');
    expect(suggestedUser(null)).toBe('ec2-user');
  });

  it('names the security group after the host', () => {
    expect(securityGroupName('Build box #2')).toBe('slotdeck-build-box-2');
  });

  it('tells whether an address lies in a CIDR block', () => {
    expect(ipv4InCidr('198.51.100.23', '198.51.100.23/32')).toBe(true);
    expect(ipv4InCidr('198.51.100.24', '198.51.100.23/32')).toBe(false);
    expect(ipv4InCidr('198.51.100.24', '198.51.100.0/24')).toBe(true);
    expect(ipv4InCidr('10.0.0.1', '0.0.0.0/0')).toBe(true);
    expect(ipv4InCidr('10.0.0.1', 'not-a-cidr')).toBe(false);
  });
});
