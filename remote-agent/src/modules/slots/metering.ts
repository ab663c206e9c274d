import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { AgentErrorCode } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import type { SlotPaths } from './paths.js';
import type { SlotRow } from './repository.js';

/** What metered slots need from the users and gateway modules; without it, slots cannot be metered. */
export interface SlotMetering {
  /** Throws SLOT_OWNER_NOT_FOUND when there is no such live user. */
  requireOwner(userId: string): void;
  issueSlotKey(ownerId: string, slotId: string, slotName: string): { keyId: string; prefix: string; secret: string };
  revokeSlotKeys(slotId: string): void;
  keyPrefix(keyId: string): string | null;
  /** Where programs on this host reach the gateway, or null when it does not listen. */
  gatewayUrl(): string | null;
}

/**
 * Metered slots: Claude Code in them reaches the agent's gateway with a key of the slot's owner. The key's secret is
 * the agent's file (0600), handed to the program through its environment at each start.
 */
export class MeteredSlots {
  constructor(private readonly deps: { metering?: SlotMetering | undefined; paths: SlotPaths; logger: Logger }) {}

  /** An owner must be a live user, and a metered slot needs a gateway that listens. */
  checkOwner(ownerId: string | null, metered: boolean): void {
    if (ownerId === null) return;
    const { metering } = this.deps;
    if (!metering) {
      throw new AppError(
        AgentErrorCode.SLOT_OWNER_NOT_FOUND,
        400,
        'This agent has no users module; create the slot without ownerId.',
      );
    }
    metering.requireOwner(ownerId);
    if (metered && metering.gatewayUrl() === null) {
      throw new AppError(
        AgentErrorCode.GATEWAY_DISABLED,
        409,
        'The gateway is not listening, so a metered slot could not reach it. Enable it (SLOTDECK_AGENT_GATEWAY_ENABLED=true) or create the slot unmetered.',
      );
    }
  }

  /** Issues a key of the owner's for the slot and keeps its secret where the slot's next start finds it. */
  issueKey(ownerId: string, slotId: string, slotName: string): { keyId: string; prefix: string } {
    const issued = this.deps.metering!.issueSlotKey(ownerId, slotId, slotName);
    this.writeKey(slotId, issued.secret);
    return { keyId: issued.keyId, prefix: issued.prefix };
  }

  /** The slot's key (a rotation's replacement): its program gets it at its next start. */
  writeKey(slotId: string, secret: string): void {
    writeFileSync(this.deps.paths.meteredKeyFile(slotId), secret, { mode: 0o600 });
  }

  /** Revokes the slot's keys (when it has any) and removes the secret. */
  revokeKeys(slotId: string, hadKey: boolean): void {
    if (hadKey) this.deps.metering?.revokeSlotKeys(slotId);
    rmSync(this.deps.paths.meteredKeyFile(slotId), { force: true });
  }

  keyPrefix(keyId: string): string | null {
    return this.deps.metering?.keyPrefix(keyId) ?? null;
  }

  /** ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY for Claude Code in a metered slot; they win over the slot's own env. */
  environment(row: SlotRow): Record<string, string> {
    if (!row.meteredKeyId) return {};
    const url = this.deps.metering?.gatewayUrl() ?? null;
    let secret: string;
    try {
      secret = readFileSync(this.deps.paths.meteredKeyFile(row.id), 'utf8').trim();
    } catch {
      secret = '';
    }
    if (!url || !secret) {
      this.deps.logger.warn({ slotId: row.id, gateway: url !== null }, 'metered slot starts without its gateway key');
      return {};
    }
    return { ANTHROPIC_BASE_URL: url, ANTHROPIC_API_KEY: secret };
  }
}
