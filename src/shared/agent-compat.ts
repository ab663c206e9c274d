/**
 * Which agents this panel can drive. The panel speaks contract AGENT_CONTRACT_VERSION; it still drives agents down
 * to MIN_AGENT_CONTRACT (the routes it uses exist there) and none above MAX_AGENT_CONTRACT (a newer agent may have
 * changed what the panel relies on). Agents before the handshake report no contract and count as 1.
 */
import { AGENT_CONTRACT_VERSION } from '../../remote-agent/src/contract/health';

export const PANEL_AGENT_CONTRACT = AGENT_CONTRACT_VERSION;
export const MIN_AGENT_CONTRACT = 1;
export const MAX_AGENT_CONTRACT = AGENT_CONTRACT_VERSION;

export type AgentCompatibility = 'compatible' | 'too-old' | 'too-new';

export function agentCompatibility(contractVersion: number | undefined): AgentCompatibility {
  const version = contractVersion ?? 1;
  if (version < MIN_AGENT_CONTRACT) return 'too-old';
  if (version > MAX_AGENT_CONTRACT) return 'too-new';
  return 'compatible';
}

/**
 * Compares dotted versions numerically (1.10.0 > 1.9.0); a pre-release sorts before its release, and pre-release
 * identifiers compare like semver's: numeric ones as numbers (rc.10 > rc.9), below alphanumeric ones.
 */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const plain = v.split('+', 1)[0]!;
    const dash = plain.indexOf('-');
    const core = dash < 0 ? plain : plain.slice(0, dash);
    const pre = dash < 0 ? null : plain.slice(dash + 1);
    return { parts: core.split('.').map((n) => Number(n) || 0), pre };
  };
  const left = parse(a);
  const right = parse(b);
  for (let i = 0; i < Math.max(left.parts.length, right.parts.length); i++) {
    const diff = (left.parts[i] ?? 0) - (right.parts[i] ?? 0);
    if (diff !== 0) return diff < 0 ? -1 : 1;
  }
  if (left.pre === right.pre) return 0;
  if (left.pre === null) return 1;
  if (right.pre === null) return -1;
  const l = left.pre.split('.');
  const r = right.pre.split('.');
  for (let i = 0; i < Math.max(l.length, r.length); i++) {
    const x = l[i];
    const y = r[i];
    if (x === y) continue;
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const xNum = /^\d+$/.test(x);
    const yNum = /^\d+$/.test(y);
    if (xNum && yNum) return Number(x) < Number(y) ? -1 : 1;
    if (xNum !== yNum) return xNum ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return 0;
}
