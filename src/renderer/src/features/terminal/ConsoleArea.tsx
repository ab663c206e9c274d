import { useCallback, useEffect, useLayoutEffect, useRef, useState, type WheelEvent } from 'react';
import type { Slot } from '../../../../shared/ipc/contract';
import { useConsoles, useHosts, useSlots, useStores, useUi } from '../../stores';
import { slotKey, type ConsoleTab } from '../../stores/consoles';
import { useAction } from '../app/actions';
import { matchShortcut, shortcutLabel } from '../app/shortcuts';
import { IdleConsoleWarning } from '../deploy/idle';
import { useResolvedTheme, XTERM_THEMES } from '../app/theme';
import { formatBytes, formatUptime } from '../hosts/Sidebar';
import { confirmStopOrRestart } from '../slots/confirm';
import { ConsentClipboardProvider, type ClipboardPromptState } from './clipboard';
import { ClipboardPrompt } from './ClipboardPrompt';
import { TerminalController, type ConsoleStatus } from './controller';

const isAppKey = (event: KeyboardEvent): boolean => matchShortcut(event) !== null;

/** The consoles' controllers by tab key, so that focus can go back to the active one after a dialog. */
type ControllerRegistry = Map<string, TerminalController>;

function TerminalView({
  tab,
  visible,
  slot,
  registry,
}: {
  tab: ConsoleTab;
  visible: boolean;
  slot: Slot | undefined;
  registry: ControllerRegistry;
}) {
  const { ipc, consoles, ui, slots } = useStores();
  const act = useAction();
  const [clipboardPrompt, setClipboardPrompt] = useState<ClipboardPromptState | null>(null);
  const container = useRef<HTMLDivElement>(null);
  const controller = useRef<TerminalController | null>(null);
  const [status, setStatus] = useState<ConsoleStatus>({ state: 'connecting' });
  const [search, setSearch] = useState<string | null>(null);
  const themeChoice = useUi((s) => s.theme);
  const theme = useResolvedTheme(themeChoice);
  const hostState = useHosts((s) => s.hosts.find((h) => h.id === tab.hostId)?.status.state);
  const fixedSize = tab.mode === 'read-only' && slot ? slot.size : undefined;
  const slotState = slot?.state;

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
      isAppKey,
      onStatus: setStatus,
      openUrl: async () =>
        (await ipc.invoke('terminal:open', { hostId: tab.hostId, slotId: tab.slotId, mode: tab.mode })).url,
    });
    controller.current = instance;
    registry.set(tab.key, instance);
    return () => {
      clipboard.dispose();
      instance.dispose();
      controller.current = null;
      registry.delete(tab.key);
    };
    // One controller per tab for its whole life; theme and size changes are applied to it below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ipc, tab.hostId, tab.slotId, tab.mode, tab.key, registry]);

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
  // The slot stopped: make sure the slot list says so (it is polled), so the console shows what the slot is now...
  useEffect(() => {
    if (status.state === 'stopped') void slots.getState().refresh(tab.hostId);
  }, [status, slots, tab.hostId]);
  // ...and once it runs again (started or restarted, here or elsewhere), attach to its new session.
  useEffect(() => {
    if (status.state === 'stopped' && (slotState === 'running' || slotState === 'starting'))
      controller.current?.reattach();
  }, [status, slotState]);
  const readOnlyCols = fixedSize?.cols;
  const readOnlyRows = fixedSize?.rows;
  useEffect(() => {
    if (readOnlyCols && readOnlyRows) controller.current?.setFixedSize({ cols: readOnlyCols, rows: readOnlyRows });
  }, [readOnlyCols, readOnlyRows]);
  // An answered clipboard prompt gives the keyboard back to the console.
  const hadPrompt = useRef(false);
  useEffect(() => {
    if (hadPrompt.current && !clipboardPrompt && visible) controller.current?.focus();
    hadPrompt.current = clipboardPrompt !== null;
  }, [clipboardPrompt, visible]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent): void => {
      if (!visible) return;
      if (matchShortcut(event) === 'find') {
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
      {status.state === 'connecting' || status.state === 'reconnecting' ? (
        <div className={`console-banner ${status.state}`} role="status">
          {status.state === 'connecting'
            ? 'Connecting…'
            : `${status.message ?? 'Reconnecting.'} (attempt ${status.attempt ?? 1})`}
        </div>
      ) : null}
      <IdleConsoleWarning hostId={tab.hostId} />
      <div ref={container} className={`terminal-host ${tab.mode}`} />
      {status.state === 'stopped' ? (
        <div className="console-stopped" role="status">
          {slotState === 'running' || slotState === 'starting' ? (
            <p className="console-stopped-title">{slot?.name ?? 'The slot'} runs again; attaching…</p>
          ) : slot ? (
            <>
              <p className="console-stopped-title">
                {slot.name} is {slot.state === 'failed' ? 'failed' : 'stopped'}.
              </p>
              <p className="console-stopped-detail">
                {slot.failure ? `${slot.failure.reason}. ` : ''}Its screen is kept: start it and this console shows the
                new session.
              </p>
              <button
                type="button"
                className="button primary"
                aria-label={`Start ${slot.name}`}
                onClick={() => {
                  controller.current?.focus();
                  void act(() => slots.getState().start(tab.hostId, slot.id), tab.hostId);
                }}
              >
                Start
              </button>
            </>
          ) : (
            <p className="console-stopped-title">This slot is not on the host any more.</p>
          )}
        </div>
      ) : null}
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
  const confirm = (verb: 'stop' | 'restart'): void => confirmStopOrRestart({ ui, slots }, tab.hostId, slot, verb);
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
      <button
        type="button"
        className="button small"
        title="Make a link others can open or embed (read-only or writable, expiring)"
        onClick={() => ui.getState().open({ kind: 'share-slot', hostId: tab.hostId, slotId: slot.id })}
      >
        Share…
      </button>
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

/**
 * The tab strip. Tabs that do not fit scroll (arrows at both ends when they overflow, the wheel scrolls sideways),
 * and the active tab is always scrolled into view, also when the keyboard switched to it.
 */
function useTabStrip(active: string | null, count: number) {
  const strip = useRef<HTMLDivElement>(null);
  const [edges, setEdges] = useState({ overflow: false, left: false, right: false });
  const measure = useCallback(() => {
    const el = strip.current;
    if (!el) return;
    const next = {
      overflow: el.scrollWidth > el.clientWidth + 1,
      left: el.scrollLeft > 0,
      right: el.scrollLeft + el.clientWidth < el.scrollWidth - 1,
    };
    setEdges((current) =>
      current.overflow === next.overflow && current.left === next.left && current.right === next.right ? current : next,
    );
  }, []);
  useEffect(() => {
    const el = strip.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, [measure]);
  useLayoutEffect(() => {
    const el = strip.current;
    const tab = el?.querySelector<HTMLElement>('.tab.active');
    if (el && tab) {
      if (tab.offsetLeft < el.scrollLeft) el.scrollLeft = tab.offsetLeft;
      else if (tab.offsetLeft + tab.offsetWidth > el.scrollLeft + el.clientWidth)
        el.scrollLeft = tab.offsetLeft + tab.offsetWidth - el.clientWidth;
    }
    measure();
  }, [active, count, edges.overflow, measure]);
  const scrollBy = (direction: 1 | -1): void =>
    strip.current?.scrollBy({ left: direction * strip.current.clientWidth * 0.8, behavior: 'smooth' });
  const onWheel = (event: WheelEvent<HTMLDivElement>): void => {
    if (strip.current && Math.abs(event.deltaY) > Math.abs(event.deltaX)) strip.current.scrollLeft += event.deltaY;
  };
  return { strip, edges, measure, scrollBy, onWheel };
}

export function ConsoleArea() {
  const tabs = useConsoles((s) => s.tabs);
  const active = useConsoles((s) => s.active);
  const byHost = useSlots((s) => s.byHost);
  const hosts = useHosts((s) => s.hosts);
  const { consoles, ui } = useStores();
  const activeTab = tabs.find((tab) => tab.key === active);
  const [registry] = useState<ControllerRegistry>(() => new Map());
  const { strip, edges, measure, scrollBy, onWheel } = useTabStrip(active, tabs.length);

  // Every dialog gives the keyboard back to the console in front when it closes. The Dialog returns focus to what
  // opened it (often a toolbar button, or nothing once that button is gone) as it unmounts; this effect runs after
  // that, in the same commit, so keys typed right after the dialog closed reach the console.
  const dialogOpen = useUi((s) => s.dialog !== null);
  const hadDialog = useRef(false);
  useEffect(() => {
    const closed = hadDialog.current && !dialogOpen;
    hadDialog.current = dialogOpen;
    if (!closed || ui.getState().view !== 'consoles') return;
    const focused = document.activeElement;
    // Unless the dialog came from a field the admin goes on typing in (a search box in the sidebar).
    if (
      focused instanceof HTMLElement &&
      focused.matches('input, textarea, select, [contenteditable="true"]') &&
      !focused.classList.contains('xterm-helper-textarea')
    )
      return;
    const key = consoles.getState().active;
    if (key) registry.get(key)?.focus();
  }, [dialogOpen, ui, consoles, registry]);

  const slotOf = (tab: ConsoleTab): Slot | undefined => byHost[tab.hostId]?.slots.find((s) => s.id === tab.slotId);
  if (tabs.length === 0) {
    return (
      <main className="workspace empty-workspace">
        <div className="empty-state">
          <h2>No console open</h2>
          <p>Pick a slot on the left to work in it, or create one with “+ New slot” ({shortcutLabel('new-slot')}).</p>
        </div>
      </main>
    );
  }
  return (
    <main className="workspace">
      <div className="tabs">
        {edges.overflow ? (
          <button
            type="button"
            className="icon-button tabs-arrow"
            aria-label="Scroll the tabs left"
            title="Scroll the tabs left"
            disabled={!edges.left}
            onClick={() => scrollBy(-1)}
          >
            ‹
          </button>
        ) : null}
        <div
          ref={strip}
          className="tabs-scroll"
          role="tablist"
          aria-label="Consoles"
          onScroll={measure}
          onWheel={onWheel}
        >
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
                <button
                  type="button"
                  className="tab-label"
                  title={`Next / previous console: ${shortcutLabel('next-console')} / ${shortcutLabel('previous-console')}`}
                  onClick={() => consoles.getState().activate(tab.key)}
                >
                  <span className={`state-dot slot-${slot?.state ?? 'stopped'}`} aria-hidden="true" />
                  {slot?.name ?? tab.slotId}
                  <span className="tab-host">@{host?.name ?? tab.hostId}</span>
                  {tab.mode === 'read-only' ? <span className="tab-badge">read-only</span> : null}
                </button>
                <button
                  type="button"
                  className="icon-button tab-close"
                  aria-label={`Close ${slot?.name ?? 'console'}`}
                  title={`Close (${shortcutLabel('close-console')})`}
                  onClick={() => consoles.getState().close(tab.key)}
                >
                  ×
                </button>
              </div>
            );
          })}
        </div>
        {edges.overflow ? (
          <button
            type="button"
            className="icon-button tabs-arrow"
            aria-label="Scroll the tabs right"
            title="Scroll the tabs right"
            disabled={!edges.right}
            onClick={() => scrollBy(1)}
          >
            ›
          </button>
        ) : null}
      </div>
      {activeTab ? <SlotToolbar tab={activeTab} slot={slotOf(activeTab)} /> : null}
      <div className="consoles">
        {tabs.map((tab) => (
          <TerminalView key={tab.key} tab={tab} visible={tab.key === active} slot={slotOf(tab)} registry={registry} />
        ))}
      </div>
    </main>
  );
}
