import { useEffect, useState, type ReactNode } from 'react';
import type { ClaudeStatus, PortalMe, PortalSlot } from '../../../../remote-agent/src/contract/portal';
import { usePortal } from '../context';
import { paths } from '../endpoints';
import { ErrorNote, useAction } from '../ui';
import { ShareSlot } from './ShareSlot';

const CLAUDE_LABELS: Record<ClaudeStatus, string> = {
  running: 'Claude running',
  'signed-in': 'Claude signed in',
  'signed-out': 'Claude signed out',
  unknown: 'Claude status unknown',
};

/** Which of start/stop/restart make sense in a state. */
export function slotActions(state: PortalSlot['state']): ('start' | 'stop' | 'restart')[] {
  switch (state) {
    case 'running':
      return ['stop', 'restart'];
    case 'starting':
    case 'restarting':
      return ['stop'];
    case 'stopped':
    case 'failed':
      return ['start'];
  }
}

export function SlotsPage(): ReactNode {
  const { api, navigate } = usePortal();
  const [slots, setSlots] = useState<PortalSlot[] | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const action = useAction();
  const [mayShare, setMayShare] = useState(false);
  const [sharing, setSharing] = useState<string | null>(null);

  useEffect(() => {
    api.get<PortalMe>(paths.me).then(
      (me) => setMayShare(me.limits.mayShare),
      () => undefined,
    );
  }, [api]);

  useEffect(() => {
    const load = (): void => {
      api.get<{ slots: PortalSlot[] }>(paths.slots).then(
        (list) => {
          setSlots(list.slots);
          setLoadError(null);
        },
        (error: unknown) => setLoadError(error),
      );
    };
    load();
    const timer = setInterval(load, 5000);
    return () => clearInterval(timer);
  }, [api]);

  const act = (slot: PortalSlot, verb: 'start' | 'stop' | 'restart'): void => {
    void action.run(async () => {
      const updated = await api.send<PortalSlot>('POST', paths.slotAction(slot.id, verb));
      setSlots((list) => list?.map((item) => (item.id === updated.id ? updated : item)) ?? null);
    });
  };

  return (
    <section aria-labelledby="slots-title">
      <h1 id="slots-title">My slots</h1>
      <ErrorNote error={loadError ?? action.error} />
      {slots === null && !loadError ? <p role="status">Loading…</p> : null}
      {slots?.length === 0 ? (
        <p className="muted" data-testid="slots-empty">
          You have no slots yet. The admin gives slots to users in the Slotdeck panel.
        </p>
      ) : null}
      <ul className="cards" data-testid="slot-list">
        {slots?.map((slot) => (
          <li key={slot.id} className="card slot" data-testid={`slot-${slot.name}`} data-slot-id={slot.id}>
            <div className="slot-head">
              <h2>{slot.name}</h2>
              <span className={`state state-${slot.state}`} data-testid="slot-state">
                {slot.state}
              </span>
            </div>
            <p className="badges">
              <span className={`badge claude-${slot.claude}`} data-testid="slot-claude">
                {CLAUDE_LABELS[slot.claude]}
              </span>
              {slot.metered ? <span className="badge">metered</span> : null}
            </p>
            {slot.failure ? <p className="error small">{slot.failure.reason}</p> : null}
            <div className="actions">
              <a
                className="button"
                href={`/slots/${slot.id}`}
                aria-label={`Open the terminal of ${slot.name}`}
                data-testid="slot-open"
                onClick={(event) => {
                  if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
                  event.preventDefault();
                  navigate({ name: 'terminal', slotId: slot.id });
                }}
              >
                Open
              </a>
              {slotActions(slot.state).map((verb) => (
                <button
                  key={verb}
                  type="button"
                  className="secondary"
                  disabled={action.busy}
                  onClick={() => act(slot, verb)}
                  aria-label={`${verb[0]!.toUpperCase()}${verb.slice(1)} ${slot.name}`}
                  data-testid={`slot-${verb}`}
                >
                  {verb[0]!.toUpperCase() + verb.slice(1)}
                </button>
              ))}
              {mayShare ? (
                <button
                  type="button"
                  className="secondary"
                  aria-expanded={sharing === slot.id}
                  onClick={() => setSharing(sharing === slot.id ? null : slot.id)}
                  data-testid="slot-share"
                >
                  Share…
                </button>
              ) : null}
            </div>
            {sharing === slot.id ? <ShareSlot slotId={slot.id} slotName={slot.name} /> : null}
          </li>
        ))}
      </ul>
    </section>
  );
}
