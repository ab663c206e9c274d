import type { LaunchImage } from '../../../shared/ipc/contract-cloud';

/** The tag Slotdeck puts on instances it launches, naming the SSH user of their image. */
export const SSH_USER_TAG = 'slotdeck-ssh-user';

/** Graviton types (t4g, m7g, c6gn, r8gd, x2gd, a1, …) run arm64 images; every other type x86_64. */
export function architectureOf(instanceType: string): 'arm64' | 'x86_64' {
  const family = instanceType.split('.')[0] ?? '';
  return /^[a-z]+\d+[a-z]*g[a-z]*$/.test(family) || family === 'a1' ? 'arm64' : 'x86_64';
}

/** AWS's public SSM parameters that name the current image of each family. */
export function imageParameter(image: LaunchImage, architecture: 'arm64' | 'x86_64'): string {
  if (image === 'al2023') return `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${architecture}`;
  const arch = architecture === 'arm64' ? 'arm64' : 'amd64';
  return `/aws/service/canonical/ubuntu/server/24.04/stable/current/${arch}/hvm/ebs-gp3/ami-id`;
}

export const IMAGE_LABELS: Record<LaunchImage, { label: string; sshUser: string }> = {
  al2023: { label: 'Amazon Linux 2023', sshUser: 'ec2-user' },
  'ubuntu-24.04': { label: 'Ubuntu 24.04 LTS', sshUser: 'ubuntu' },
};

const OWNERS: Record<string, string> = {
  '137112412984': 'ec2-user', // Amazon
  '099720109477': 'ubuntu', // Canonical
  '136693071363': 'admin', // Debian
  '125523088429': 'fedora', // Fedora
};

/**
 * The SSH user an image's family uses (the admin can change it): ubuntu for Ubuntu, admin for Debian, ec2-user for
 * Amazon Linux and RHEL-likes, and ec2-user when nothing tells.
 */
export function suggestedUser(image: { name?: string | null; ownerId?: string | null } | null): string {
  const name = (image?.name ?? '').toLowerCase();
  if (name.includes('ubuntu')) return 'ubuntu';
  if (name.includes('debian')) return 'admin';
  if (name.includes('fedora')) return 'fedora';
  if (name.includes('centos')) return 'centos';
  if (/^(al2023|amzn|al20)/.test(name) || name.includes('rhel') || name.includes('suse')) return 'ec2-user';
  return OWNERS[image?.ownerId ?? ''] ?? 'ec2-user';
}

/** `slotdeck-<name>`: the security group of a launched host (AWS allows 255 characters of a-zA-Z0-9 ._-:/()#,@[]+=&;{}!$*). */
export const securityGroupName = (hostName: string): string =>
  `slotdeck-${hostName
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')}`;

/** Whether an IPv4 address lies in a CIDR block. */
export function ipv4InCidr(address: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const bits = Number(bitsText ?? 32);
  const toNumber = (ip: string): number | null => {
    const parts = ip.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return null;
    return parts.reduce((n, p) => n * 256 + p, 0);
  };
  const a = toNumber(address);
  const b = toNumber(base ?? '');
  if (a === null || b === null || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const size = 2 ** (32 - bits);
  return Math.floor(a / size) === Math.floor(b / size);
}
