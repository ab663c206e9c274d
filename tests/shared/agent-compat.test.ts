import { describe, expect, it } from 'vitest';
import { agentCompatibility, compareVersions } from '../../src/shared/agent-compat';

describe('agent versions', () => {
  it('orders releases numerically and a pre-release before its release', () => {
    expect(compareVersions('1.10.0', '1.9.0')).toBe(1);
    expect(compareVersions('1.2.0', '1.2.0')).toBe(0);
    expect(compareVersions('1.2.0-rc.1', '1.2.0')).toBe(-1);
    expect(compareVersions('1.2.0', '1.2.0-rc.1')).toBe(1);
  });

  it('compares numeric pre-release parts as numbers (rc.10 is newer than rc.9), like semver', () => {
    expect(compareVersions('1.2.0-rc.10', '1.2.0-rc.9')).toBe(1);
    expect(compareVersions('1.2.0-rc.9', '1.2.0-rc.10')).toBe(-1);
    expect(compareVersions('1.2.0-rc.1', '1.2.0-rc.1.1')).toBe(-1);
    expect(compareVersions('1.2.0-2', '1.2.0-beta')).toBe(-1);
    expect(compareVersions('1.2.0-alpha', '1.2.0-beta')).toBe(-1);
    const sorted = ['1.0.0', '1.0.0-rc.10', '1.0.0-alpha', '1.0.0-rc.2', '0.9.1'].sort(compareVersions);
    expect(sorted).toEqual(['0.9.1', '1.0.0-alpha', '1.0.0-rc.2', '1.0.0-rc.10', '1.0.0']);
  });

  it('counts an agent without a contract as contract 1', () => {
    expect(agentCompatibility(undefined)).toBe('compatible');
    expect(agentCompatibility(10_000)).toBe('too-new');
  });
});
