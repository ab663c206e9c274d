import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { PortalSlot, PortalTicket } from '../../../../remote-agent/src/contract/portal';
import { TerminalController, type ConsoleStatus } from '../../../renderer/src/features/terminal/controller';
import { ApiError } from '../../lib/api';
import { webSocketUrl } from '../../lib/page-data';
import { DARK_TERMINAL, LIGHT_TERMINAL } from '../../lib/terminal-theme';
import { usePortal } from '../context';
import { NavLinks } from '../nav';
import { paths } from '../endpoints';
import { currentTheme } from '../theme';

/** Status line words for the console's state. */
function statusLine(status: ConsoleStatus): string {
  switch (status.state) {
    case 'connecting':
      return 'Connecting…';
    case 'open':
      return 'Connected';
    case 'reconnecting':
      return status.message ? `Reconnecting: ${status.message}` : 'Reconnecting…';
    case 'stopped':
      return 'The slot is not running.';
  }
}

/** A slot's terminal, full page: xterm through the panel's TerminalController, with a ticket per connection. */
export default function TerminalPage({ slotId }: { slotId: string }): ReactNode {
  const { api, prefs } = usePortal();
  const container = useRef<HTMLDivElement>(null);
  const controllerRef = useRef<TerminalController | null>(null);
  const [status, setStatus] = useState<ConsoleStatus>({ state: 'connecting' });
  const [slot, setSlot] = useState<PortalSlot | null>(null);
  const [fatal, setFatal] = useState<string | null>(null);

  useEffect(() => {
    api.get<{ slots: PortalSlot[] }>(paths.slots).then(
      (list) => setSlot(list.slots.find((item) => item.id === slotId) ?? null),
      () => undefined,
    );
  }, [api, slotId]);

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const controller = new TerminalController(element, {
      mode: 'writable',
      theme: currentTheme() === 'light' ? LIGHT_TERMINAL : DARK_TERMINAL,
      onStatus: setStatus,
      onTitle: (title) => {
        document.title = `${title} · Slotdeck`;
      },
      openUrl: async () => {
        try {
          const ticket = await api.send<PortalTicket>('POST', paths.slotTicket(slotId));
          return webSocketUrl(ticket.url, window.location);
        } catch (error) {
          if (error instanceof ApiError && (error.code === 'PORTAL_SLOT_NOT_YOURS' || error.code === 'SLOT_NOT_FOUND'))
            setFatal(error.message);
          throw error;
        }
      },
    });
    controller.term.options.fontSize = prefs.terminalFontSize;
    controller.fit();
    controllerRef.current = controller;
    controller.focus();
    return () => {
      controller.dispose();
      controllerRef.current = null;
    };
    // The font size is applied below without reconnecting.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, slotId]);

  useEffect(() => {
    const controller = controllerRef.current;
    if (!controller) return;
    controller.term.options.fontSize = prefs.terminalFontSize;
    controller.setTheme(currentTheme() === 'light' ? LIGHT_TERMINAL : DARK_TERMINAL);
    controller.fit();
  }, [prefs.terminalFontSize, prefs.theme]);

  const start = (): void => {
    void api.send<PortalSlot>('POST', paths.slotAction(slotId, 'start')).then(
      (updated) => {
        setSlot(updated);
        controllerRef.current?.reattach();
      },
      (error: unknown) => setFatal(error instanceof Error ? error.message : String(error)),
    );
  };

  return (
    <div className="terminal-page">
      <header className="terminal-bar">
        <NavLinks current={{ name: 'terminal', slotId }} />
        <span className="terminal-name" data-testid="terminal-slot-name">
          {slot?.name ?? slotId}
        </span>
        <span className={`terminal-status status-${status.state}`} role="status" data-testid="terminal-status">
          {fatal ?? statusLine(status)}
        </span>
        {status.state === 'stopped' ? (
          <button type="button" onClick={start} data-testid="terminal-start">
            Start
          </button>
        ) : null}
      </header>
      <div
        className="terminal-box"
        ref={container}
        data-testid="terminal"
        aria-label={`Terminal of ${slot?.name ?? 'the slot'}`}
      />
    </div>
  );
}
