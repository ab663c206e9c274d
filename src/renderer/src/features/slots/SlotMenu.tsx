import { useEffect, useRef, useState } from 'react';
import type { Slot } from '../../../../shared/ipc/contract';
import { useStores } from '../../stores';
import { useAction } from '../app/actions';
import { confirmStopOrRestart } from './confirm';

/** A slot's actions behind a "⋯" button: edit, start/stop/restart, delete. */
export function SlotMenu({ hostId, slot }: { hostId: string; slot: Slot }) {
  const { slots, ui } = useStores();
  const act = useAction();
  const [open, setOpen] = useState(false);
  const root = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    const onPointer = (event: PointerEvent): void => {
      if (!root.current?.contains(event.target as Node)) setOpen(false);
    };
    const onKey = (event: KeyboardEvent): void => {
      if (event.key === 'Escape') setOpen(false);
    };
    document.addEventListener('pointerdown', onPointer);
    document.addEventListener('keydown', onKey);
    // The first item takes the focus, so the keyboard can go on from the button.
    root.current?.querySelector<HTMLButtonElement>('[role="menuitem"]')?.focus();
    return () => {
      document.removeEventListener('pointerdown', onPointer);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);

  const run = (action: () => void): void => {
    setOpen(false);
    action();
  };
  const confirm = (verb: 'stop' | 'restart'): void => confirmStopOrRestart({ ui, slots }, hostId, slot, verb);
  const stopped = slot.state === 'stopped' || slot.state === 'failed';
  return (
    <div className="slot-menu" ref={root}>
      <button
        type="button"
        className="icon-button"
        aria-haspopup="menu"
        aria-expanded={open}
        aria-label={`Actions for ${slot.name}`}
        title="Slot actions"
        onClick={() => setOpen((value) => !value)}
      >
        ⋯
      </button>
      {open ? (
        <div className="menu" role="menu" aria-label={`${slot.name} actions`}>
          <button
            type="button"
            role="menuitem"
            onClick={() => run(() => ui.getState().open({ kind: 'edit-slot', hostId, slotId: slot.id }))}
          >
            Edit…
          </button>
          <button
            type="button"
            role="menuitem"
            onClick={() => run(() => ui.getState().open({ kind: 'share-slot', hostId, slotId: slot.id }))}
          >
            Share…
          </button>
          {stopped ? (
            <button
              type="button"
              role="menuitem"
              onClick={() => run(() => void act(() => slots.getState().start(hostId, slot.id), hostId))}
            >
              Start
            </button>
          ) : (
            <>
              <button type="button" role="menuitem" onClick={() => run(() => confirm('restart'))}>
                Restart
              </button>
              <button type="button" role="menuitem" onClick={() => run(() => confirm('stop'))}>
                Stop
              </button>
            </>
          )}
          <button
            type="button"
            role="menuitem"
            className="danger-text"
            onClick={() =>
              run(() => ui.getState().open({ kind: 'delete-slot', hostId, slotId: slot.id, name: slot.name }))
            }
          >
            Delete…
          </button>
        </div>
      ) : null}
    </div>
  );
}
