import { useCallback, useEffect, useRef, useState } from 'react';
import type { IpcInput, LogLevelName, LogSource } from '../../../../shared/ipc/contract';
import { IpcClientError } from '../../lib/ipc';
import { formatLogTime } from '../../lib/format';
import { saveExport } from '../../lib/save-export';
import { useStores } from '../../stores';
import { handleError } from '../app/actions';
import { appendNewer, localToIso, prependOlder, windowOf, type LogWindow } from './log-lines';

const PAGE = 300;
const FOLLOW_MS = 2000;
const LEVELS: LogLevelName[] = ['debug', 'info', 'warn', 'error', 'fatal'];

type ReadQuery = Omit<IpcInput<'logs:read'>, 'hostId' | 'source'>;

/**
 * A host's logs: the agent's own and each slot's PM2 output, paged from the host (never loaded whole). Follow polls
 * for lines after the newest shown while the view is visible; older pages load at the top; filters and "jump to a
 * time" ask the agent again.
 */
export default function LogsView({ hostId }: { hostId: string }) {
  const stores = useStores();
  const [sources, setSources] = useState<LogSource[] | null>(null);
  const [source, setSource] = useState('agent');
  const [level, setLevel] = useState<LogLevelName | ''>('');
  const [textDraft, setTextDraft] = useState('');
  const [text, setText] = useState('');
  const [jumpDraft, setJumpDraft] = useState('');
  const [jumpAt, setJumpAt] = useState<string | null>(null);
  const [follow, setFollow] = useState(true);
  /** What is shown, and for which source, filters and time (a change shows "Loading…" until its page comes). */
  const key = `${source}|${level}|${text}|${jumpAt ?? ''}`;
  const [loaded, setLoaded] = useState<{ key: string; view: LogWindow } | null>(null);
  const [failure, setFailure] = useState<{ key: string; message: string } | null>(null);
  const view = loaded?.key === key ? loaded.view : null;
  const error = failure?.key === key ? failure.message : null;
  const setView = useCallback((next: LogWindow) => setLoaded({ key, view: next }), [key]);
  const setError = useCallback((message: string) => setFailure({ key, message }), [key]);
  const [busy, setBusy] = useState(false);
  const [downloading, setDownloading] = useState(false);
  const listRef = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  const viewRef = useRef<LogWindow | null>(null);
  useEffect(() => {
    viewRef.current = view;
  }, [view]);

  const read = useCallback(
    (query: ReadQuery) =>
      stores.ipc.invoke('logs:read', {
        hostId,
        source,
        limit: PAGE,
        ...(level ? { level } : {}),
        ...(text ? { q: text } : {}),
        ...query,
      }),
    [stores, hostId, source, level, text],
  );

  useEffect(() => {
    let current = true;
    stores.ipc.invoke('logs:sources', { hostId }).then(
      (list) => current && setSources(list.sources),
      (err: Error) => current && setError(err.message),
    );
    return () => {
      current = false;
    };
  }, [stores, hostId, setError]);

  // A new source, filter or time: the page is read afresh (the newest lines, or from the time).
  useEffect(() => {
    let current = true;
    stickToBottom.current = jumpAt === null;
    read(jumpAt ? { at: jumpAt } : {}).then(
      (page) => current && setView(windowOf(page)),
      (err: Error) => current && setError(err.message),
    );
    return () => {
      current = false;
    };
  }, [read, jumpAt, setView, setError]);

  const loadNewer = useCallback(async (): Promise<void> => {
    const shown = viewRef.current;
    if (!shown) return;
    try {
      const page = await read({ after: shown.after });
      if (viewRef.current !== shown) return; // replaced meanwhile (a new filter)
      setView(appendNewer(shown, page));
    } catch (err) {
      // The lines after the cursor were rotated away: start again from the newest.
      if (err instanceof IpcClientError && err.code === 'LOG_CURSOR_INVALID') setJumpAt(null);
      else if (!(err instanceof IpcClientError && err.code === 'IPC_CANCELLED')) setError((err as Error).message);
    }
  }, [read, setView, setError]);

  // Follow: while visible, ask for lines after the newest shown every 2 s.
  useEffect(() => {
    if (!follow) return;
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible' && viewRef.current) void loadNewer();
    }, FOLLOW_MS);
    return () => clearInterval(timer);
  }, [follow, loadNewer]);

  const loadOlder = async (): Promise<void> => {
    const shown = viewRef.current;
    if (!shown?.before || busy) return;
    setBusy(true);
    const list = listRef.current;
    const heightBefore = list?.scrollHeight ?? 0;
    try {
      const page = await read({ before: shown.before });
      if (viewRef.current !== shown) return;
      setView(prependOlder(shown, page));
      // Keep the line the admin was reading in place.
      requestAnimationFrame(() => {
        if (list) list.scrollTop += list.scrollHeight - heightBefore;
      });
    } catch (err) {
      if (err instanceof IpcClientError && err.code === 'LOG_CURSOR_INVALID') setJumpAt(null);
      else setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  // New lines at the bottom scroll into view when the admin was at the bottom.
  useEffect(() => {
    const list = listRef.current;
    if (list && stickToBottom.current) list.scrollTop = list.scrollHeight;
  }, [view]);

  const onScroll = (): void => {
    const list = listRef.current;
    if (!list) return;
    stickToBottom.current = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
    if (list.scrollTop === 0 && view?.before) void loadOlder();
  };

  const download = async (): Promise<void> => {
    setDownloading(true);
    try {
      const result = await stores.ipc.invoke('logs:download', {
        hostId,
        source,
      });
      saveExport(result, (path) => stores.ui.getState().notify(`Log saved to ${path}.`));
    } catch (err) {
      handleError(stores, err, hostId);
    } finally {
      setDownloading(false);
    }
  };

  const jump = (): void => {
    if (!jumpDraft) {
      setJumpAt(null);
      return;
    }
    const iso = localToIso(jumpDraft);
    if (!iso) {
      setError('The time to jump to is not a date and time.');
      return;
    }
    setFollow(false);
    setJumpAt(iso);
  };

  return (
    <main className="workspace admin-view logs-view" aria-label="Logs">
      <header className="view-header wrap">
        <h2>Logs</h2>
        <select aria-label="Log" value={source} onChange={(e) => setSource(e.target.value)}>
          {(sources ?? [{ id: 'agent', label: 'agent' } as LogSource]).map((s) => (
            <option key={s.id} value={s.id}>
              {s.label}
            </option>
          ))}
        </select>
        <select aria-label="Level" value={level} onChange={(e) => setLevel(e.target.value as LogLevelName | '')}>
          <option value="">Any level</option>
          {LEVELS.map((l) => (
            <option key={l} value={l}>
              {l} and above
            </option>
          ))}
        </select>
        <form
          className="inline"
          onSubmit={(e) => {
            e.preventDefault();
            setText(textDraft.trim());
          }}
        >
          <input
            type="search"
            aria-label="Filter text"
            placeholder="Filter text, Enter"
            maxLength={200}
            value={textDraft}
            onChange={(e) => {
              setTextDraft(e.target.value);
              if (e.target.value === '') setText('');
            }}
          />
        </form>
        <form
          className="inline"
          onSubmit={(e) => {
            e.preventDefault();
            jump();
          }}
        >
          <input
            type="datetime-local"
            step={1}
            aria-label="Jump to time"
            value={jumpDraft}
            onChange={(e) => setJumpDraft(e.target.value)}
          />
          <button type="submit" className="button small">
            Jump
          </button>
        </form>
        <label className="inline">
          <input
            type="checkbox"
            checked={follow}
            onChange={(e) => {
              setFollow(e.target.checked);
              if (e.target.checked && jumpAt) setJumpAt(null);
            }}
          />{' '}
          Follow
        </label>
        <span className="spacer" />
        <button type="button" className="button small" disabled={downloading} onClick={() => void download()}>
          {downloading ? 'Downloading…' : 'Download'}
        </button>
      </header>
      {error ? (
        <div className="banner error" role="alert">
          {error}
        </div>
      ) : null}
      <div className="log-lines" role="log" aria-label="Log lines" ref={listRef} onScroll={onScroll}>
        {view === null ? (
          error ? null : (
            <p className="empty padded">Loading…</p>
          )
        ) : (
          <>
            {view.before ? (
              <button type="button" className="button small log-older" disabled={busy} onClick={() => void loadOlder()}>
                {busy ? 'Loading…' : 'Load older lines'}
              </button>
            ) : (
              <p className="muted log-start">Start of the log (older lines are not kept).</p>
            )}
            {view.lines.length === 0 ? (
              <p className="empty padded">
                No lines{level || text ? ' match these filters here' : ''}
                {view.before ? '; load older lines to look further back' : ''}.
              </p>
            ) : (
              view.lines.map((line) => (
                <div key={line.cursor} className={`log-line level-${line.level ?? 'none'}`}>
                  <span className="log-time">{line.time ? formatLogTime(line.time) : ''}</span>
                  <span className="log-level">{line.level ?? ''}</span>
                  <span className="log-text">{line.text}</span>
                </div>
              ))
            )}
            {!view.atEnd && !follow ? (
              <button type="button" className="button small log-newer" onClick={() => void loadNewer()}>
                Load newer lines
              </button>
            ) : null}
          </>
        )}
      </div>
    </main>
  );
}
