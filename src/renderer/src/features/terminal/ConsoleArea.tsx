import { useEffect, useRef, useState } from 'react';
import type { Slot } from '../../../../shared/ipc/contract';
import { useConsoles, useHosts, useSlots, useStores, useUi } from '../../stores';
import { slotKey, type ConsoleTab } from '../../stores/consoles';
import { useAction } from '../app/actions';
import { useResolvedTheme, XTERM_THEMES } from '../app/theme';
import { formatBytes, formatUptime } from '../hosts/Sidebar';
import { ConsentClipboardProvider, type ClipboardPromptState } from './clipboard';
import { ClipboardPrompt } from './ClipboardPrompt';
import { TerminalController, type ConsoleStatus } from './controller';

function TerminalView({ tab, visible, slot }: { tab: ConsoleTab; visible: boolean; slot: Slot | undefined }) {
  const { ipc, consoles, ui } = useStores();
  const [clipboardPrompt, setClipboardPrompt] = useState<ClipboardPromptState | null>(null);
  const container = useRef<HTMLDivElement>(null);
  const controller = useRef<TerminalController | null>(null);
  const [status, setStatus] = useState<ConsoleStatus>({ state: 'connecting' });
  const [search, setSearch] = useState<string | null>(null);
  const themeChoice = useUi((s) => s.theme);
  const theme = useResolvedTheme(themeChoice);
  const hostState = useHosts((s) => s.hosts.find((h) => h.id === tab.hostId)?.status.state);
  const fixedSize = tab.mode === 'read-only' && slot ? slot.size : undefined;

  useEffect(() => {
    if (!container.current) return;
    const clipboard = new ConsentClipboardProvider({
      alwaysAllowed: () => consoles.getState().clipboardAlways.includes(slotKey(tab.hostId, tab.slotId)),
      rememberAlways: () => consoles.getState().setClipboardAlways(tab.hostId, tab.slotId, true),
      show: setClipboardPrompt,
      onWriteFailed: () =>
        ui
          .getState()
          .notify('The browser refused to write the clipboard. Select the text in the console and copy it.', 'error'),
    });
    const instance = new TerminalController(container.current, {
      mode: tab.mode,
      clipboard,
      theme: XTERM_THEMES[theme],
      fixedSize,
      onStatus: setStatus,
      openUrl: async () =>
        (await ipc.invoke('terminal:open', { hostId: tab.hostId, slotId: tab.slotId, mode: tab.mode })).url,
    });
    controller.current = instance;
    return () => {
      clipboard.dispose();
      instance.dispose();
      controller.current = null;
    };
    // One controller per tab for its whole life; theme and size changes are applied to it below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ipc, tab.hostId, tab.slotId, tab.mode]);

  useEffect(() => controller.current?.setTheme(XTERM_THEMES[theme]), [theme]);
  useEffect(() => {
    if (visible) {
      controller.current?.fit();
      controller.current?.focus();
    }
  }, [visible]);
  // The host is back (tunnel reconnected, local agent restarted): reattach now, not at the next retry.
  useEffect(() => {
    if (hostState === 'connected') controller.current?.retryNow();
  }, [hostState]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent): void => {
      if (!visible) return;
      if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key.toLowerCase() === 'f') {
        event.preventDefault();
        setSearch((current) => (current === null ? '' : null));
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [visible]);

  return (
    <div className="console" hidden={!visible} data-console={tab.key} data-state={status.state}>
      {search !== null ? (
        <div className="search-bar">
          <input
            autoFocus
            aria-label="Find in console"
            placeholder="Find…"
            value={search}
            onChange={(event) => {
              setSearch(event.target.value);
              controller.current?.find(event.target.value);
            }}
            onKeyDown={(event) => {
              if (event.key === 'Enter') controller.current?.find(search, event.shiftKey ? 'previous' : 'next');
              if (event.key === 'Escape') {
                controller.current?.clearFind();
                setSearch(null);
                controller.current?.focus();
              }
            }}
          />
          <span className="hint">Enter: next · Shift+Enter: previous · Esc: close</span>
        </div>
      ) : null}
      {status.state !== 'open' ? (
        <div className={`console-banner ${status.state}`} role="status">
          {status.state === 'connecting' ? 'Connecting…' : null}
          {status.state === 'reconnecting'
            ? `${status.message ?? 'Reconnecting.'} (attempt ${status.attempt ?? 1})`
            : null}
          {status.state === 'closed' ? status.message : null}
        </div>
      ) : null}
      <div ref={container} className="terminal-host" />
      {clipboardPrompt ? (
        <ClipboardPrompt key={clipboardPrompt.request.id} state={clipboardPrompt} slotName={slot?.name ?? tab.slotId} />
      ) : null}
    </div>
  );
}

function SlotToolbar({ tab, slot }: { tab: ConsoleTab; slot: Slot | undefined }) {
  const { slots, ui, consoles } = useStores();
  const act = useAction();
  const clipboardAlways = useConsoles((s) => s.clipboardAlways.includes(slotKey(tab.hostId, tab.slotId)));
  if (!slot) return <div className="toolbar">This slot is not on the host any more.</div>;
  const confirm = (verb: 'stop' | 'restart'): void =>
    ui.getState().open({
      kind: 'confirm',
      title: `${verb === 'stop' ? 'Stop' : 'Restart'} ${slot.name}?`,
      message:
        verb === 'stop'
          ? 'Its program ends (a Claude Code session in it too). Start it again any time; its home and files stay.'
          : 'Its program ends and starts again. The screen history stays.',
      confirm: verb === 'stop' ? 'Stop slot' : 'Restart slot',
      danger: true,
      run: () =>
        verb === 'stop' ? slots.getState().stop(tab.hostId, slot.id) : slots.getState().restart(tab.hostId, slot.id),
    });
  return (
    <div className="toolbar">
      <span className={`state-chip slot-${slot.state}`}>{slot.state}</span>
      <span className="toolbar-title">{slot.name}</span>
      <span className="toolbar-meta" title={slot.argv.join(' ')}>
        {slot.argv.join(' ')} · up {formatUptime(slot.uptimeMs)} · {slot.restarts} restart
        {slot.restarts === 1 ? '' : 's'} · {slot.cpuPercent ?? 0}% CPU · {formatBytes(slot.memoryBytes)} ·{' '}
        {slot.viewers.writable + slot.viewers.readOnly} viewer
        {slot.viewers.writable + slot.viewers.readOnly === 1 ? '' : 's'}
        {tab.mode === 'read-only' ? ' · read-only' : ''}
      </span>
      {slot.failure ? (
        <span className="toolbar-error" title={slot.failure.reason}>
          failed: {slot.failure.reason}
        </span>
      ) : null}
      <span className="spacer" />
      {slot.state === 'stopped' || slot.state === 'failed' ? (
        <button
          type="button"
          className="button small primary"
          onClick={() => void act(() => slots.getState().start(tab.hostId, slot.id), tab.hostId)}
        >
          Start
        </button>
      ) : (
        <>
          <button type="button" className="button small" onClick={() => confirm('restart')}>
            Restart
          </button>
          <button type="button" className="button small" onClick={() => confirm('stop')}>
            Stop
          </button>
        </>
      )}
      <label
        className="toolbar-switch"
        title="Programs in this slot may put text on your clipboard (OSC 52) without asking each time"
      >
        <input
          type="checkbox"
          checked={clipboardAlways}
          onChange={(event) => consoles.getState().setClipboardAlways(tab.hostId, slot.id, event.target.checked)}
        />
        Always allow clipboard writes
      </label>
      {tab.mode === 'writable' ? (
        <button
          type="button"
          className="button small"
          title="Open a read-only view"
          onClick={() => consoles.getState().open({ hostId: tab.hostId, slotId: slot.id, mode: 'read-only' })}
        >
          Watch
        </button>
      ) : null}
      <button
        type="button"
        className="button small danger-outline"
        onClick={() =>
          ui.getState().open({ kind: 'delete-slot', hostId: tab.hostId, slotId: slot.id, name: slot.name })
        }
      >
        Delete…
      </button>
    </div>
  );
}

export function ConsoleArea() {
  const tabs = useConsoles((s) => s.tabs);
  const active = useConsoles((s) => s.active);
  const byHost = useSlots((s) => s.byHost);
  const hosts = useHosts((s) => s.hosts);
  const { consoles } = useStores();
  const activeTab = tabs.find((tab) => tab.key === active);
  const slotOf = (tab: ConsoleTab): Slot | undefined => byHost[tab.hostId]?.slots.find((s) => s.id === tab.slotId);
  if (tabs.length === 0) {
    return (
      <main className="workspace empty-workspace">
        <div className="empty-state">
          <h2>No console open</h2>
          <p>Pick a slot on the left to work in it, or create one with “+ New slot” (Ctrl+Shift+N).</p>
        </div>
      </main>
    );
  }
  return (
    <main className="workspace">
      <div className="tabs" role="tablist" aria-label="Consoles">
        {tabs.map((tab) => {
          const slot = slotOf(tab);
          const host = hosts.find((h) => h.id === tab.hostId);
          return (
            <div
              key={tab.key}
              className={`tab ${tab.key === active ? 'active' : ''}`}
              role="tab"
              aria-selected={tab.key === active}
            >
              <button type="button" className="tab-label" onClick={() => consoles.getState().activate(tab.key)}>
                <span className={`state-dot slot-${slot?.state ?? 'stopped'}`} aria-hidden="true" />
                {slot?.name ?? tab.slotId}
                <span className="tab-host">@{host?.name ?? tab.hostId}</span>
                {tab.mode === 'read-only' ? <span className="tab-badge">read-only</span> : null}
              </button>
              <button
                type="button"
                className="icon-button tab-close"
                aria-label={`Close ${slot?.name ?? 'console'}`}
                title="Close (Ctrl+Shift+W)"
                onClick={() => consoles.getState().close(tab.key)}
              >
                ×
              </button>
            </div>
          );
        })}
      </div>
      {activeTab ? <SlotToolbar tab={activeTab} slot={slotOf(activeTab)} /> : null}
      <div className="consoles">
        {tabs.map((tab) => (
          <TerminalView key={tab.key} tab={tab} visible={tab.key === active} slot={slotOf(tab)} />
        ))}
      </div>
    </main>
  );
}
