import type { Slot } from '../../../../shared/ipc/contract';

/** The words on a slot's badge: its state, with how far a crash loop got ("restarting 3/5"). */
export function slotStateLabel(slot: Slot): string {
  if (slot.state === 'restarting' && slot.crashLoop)
    return `restarting ${slot.crashLoop.exits}/${slot.crashLoop.limit}`;
  return slot.state;
}

/** A colour-coded badge of the slot's state; the colours are the state dots' (features/hosts/sidebar.css, `.slot-<state>`). */
export function SlotStateBadge({ slot }: { slot: Slot }) {
  const title =
    slot.state === 'restarting' && slot.crashLoop
      ? `Its program ended ${slot.crashLoop.exits} time${slot.crashLoop.exits === 1 ? '' : 's'} within ${slot.crashLoop.windowSeconds} s; after ${slot.crashLoop.limit} the slot is stopped as failed.`
      : undefined;
  return (
    <span className={`slot-badge slot-${slot.state}`} title={title}>
      {slotStateLabel(slot)}
    </span>
  );
}

/**
 * Why a slot is failed or restarting, in a line the admin can read without hovering: the failure's reason, or how
 * its program last ended. Null while nothing is wrong.
 */
export function slotProblem(slot: Slot): { tone: 'failed' | 'restarting'; text: string } | null {
  if (slot.state === 'failed' && slot.failure) return { tone: 'failed', text: slot.failure.reason };
  if (slot.state === 'restarting' && slot.crashLoop?.lastExit)
    return { tone: 'restarting', text: slot.crashLoop.lastExit };
  return null;
}
