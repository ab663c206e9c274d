import type { GatewayStatus, Host } from '../../../shared/ipc/contract';

/**
 * The address end users put in ANTHROPIC_BASE_URL. The agent reports its gateway as seen on the host (a wildcard
 * listener as 127.0.0.1); for a remote host, end users reach it at the host's own address instead.
 */
export function endUserGatewayUrl(
  status: Pick<GatewayStatus, 'url' | 'listen'> | null | undefined,
  host: Pick<Host, 'kind' | 'address'> | undefined,
): string | null {
  if (!status?.url) return null;
  if (host?.kind !== 'ssh' || !host.address) return status.url;
  const wildcard = status.listen?.host === '0.0.0.0' || status.listen?.host === '::';
  if (!wildcard) return status.url;
  const url = new URL(status.url);
  url.hostname = host.address.includes(':') && !host.address.startsWith('[') ? `[${host.address}]` : host.address;
  return url.origin;
}

/** Whether only programs on the host itself (its slots included) can reach the gateway. */
export const gatewayIsLocalOnly = (status: Pick<GatewayStatus, 'listen'> | null | undefined): boolean =>
  status?.listen?.host === '127.0.0.1' || status?.listen?.host === '::1';
