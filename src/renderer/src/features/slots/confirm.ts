import type { Slot } from '../../../../shared/ipc/contract';
import type { AppStores } from '../../stores';

/**
 * Stopping or restarting ends the slot's program (a Claude Code session too), so both ask first; the slot menu and
 * the console toolbar ask the same question.
 */
export function confirmStopOrRestart(
  { ui, slots }: Pick<AppStores, 'ui' | 'slots'>,
  hostId: string,
  slot: Pick<Slot, 'id' | 'name'>,
  verb: 'stop' | 'restart',
): void {
  ui.getState().open({
    kind: 'confirm',
    title: `${verb === 'stop' ? 'Stop' : 'Restart'} ${slot.name}?`,
    message:
      verb === 'stop'
        ? 'Its program ends (a Claude Code session in it too). Start it again any time; its home and files stay.'
        : 'Its program ends and starts again. The screen history stays.',
    confirm: verb === 'stop' ? 'Stop slot' : 'Restart slot',
    danger: true,
    run: () => (verb === 'stop' ? slots.getState().stop(hostId, slot.id) : slots.getState().restart(hostId, slot.id)),
  });
}
