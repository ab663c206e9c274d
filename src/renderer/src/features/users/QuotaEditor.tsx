import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { Quota, QuotaOwner, QuotaStatus, QuotaWindow } from '../../../../shared/ipc/contract';
import { formatRelative, formatTokens, formatUsd } from '../../lib/format';
import { useStores, useUsers } from '../../stores';
import { quotaKey } from '../../stores/users';

const WINDOWS: Array<[QuotaWindow, string]> = [
  ['5h', 'Rolling 5 hours'],
  ['day', 'UTC day'],
  ['month', 'Calendar month'],
];

interface Draft {
  tokens: string;
  cost: string;
}

const draftsOf = (quotas: QuotaStatus[]): Record<QuotaWindow, Draft> => {
  const drafts = { '5h': { tokens: '', cost: '' }, day: { tokens: '', cost: '' }, month: { tokens: '', cost: '' } };
  for (const q of quotas)
    drafts[q.window] = {
      tokens: q.maxTokens === null ? '' : String(q.maxTokens),
      cost: q.maxCostUsd === null ? '' : String(q.maxCostUsd),
    };
  return drafts;
};

/** The drafts as quotas, or the first field that is not a positive number. */
export function quotasFromDrafts(drafts: Record<QuotaWindow, Draft>): { quotas: Quota[] } | { error: string } {
  const quotas: Quota[] = [];
  for (const [window, label] of WINDOWS) {
    const { tokens, cost } = drafts[window];
    const maxTokens = tokens.trim() ? Number(tokens.replace(/[,_\s]/g, '')) : null;
    const maxCostUsd = cost.trim() ? Number(cost.replace(/^\$/, '')) : null;
    if (maxTokens !== null && !(Number.isInteger(maxTokens) && maxTokens > 0))
      return { error: `${label}: tokens must be a whole number above 0, or empty for no limit.` };
    if (maxCostUsd !== null && !(Number.isFinite(maxCostUsd) && maxCostUsd > 0))
      return { error: `${label}: cost must be an amount in USD above 0, or empty for no limit.` };
    if (maxTokens !== null || maxCostUsd !== null) quotas.push({ window, maxTokens, maxCostUsd });
  }
  return { quotas };
}

function Usage({ status }: { status: QuotaStatus | undefined }) {
  if (!status) return <span className="muted">no limit</span>;
  const parts: string[] = [];
  if (status.maxTokens !== null)
    parts.push(
      `${formatTokens(status.usedTokens)} of ${formatTokens(status.maxTokens)} tokens (${formatTokens(Math.max(0, status.maxTokens - status.usedTokens))} left)`,
    );
  if (status.maxCostUsd !== null)
    parts.push(
      `${formatUsd(status.usedCostUsd)} of ${formatUsd(status.maxCostUsd)} (${formatUsd(Math.max(0, status.maxCostUsd - status.usedCostUsd))} left)`,
    );
  return (
    <span className={status.exceeded ? 'quota-exceeded' : 'muted'}>
      {status.exceeded ? 'Used up: ' : ''}
      {parts.join(' · ')} · resets {formatRelative(status.resetsAt)}
    </span>
  );
}

export interface QuotaDrafts {
  /** What the fields show: the admin's edits, else what the agent has. */
  current: Record<QuotaWindow, Draft>;
  /** The agent's quotas with what is used of them (undefined until loaded). */
  loaded: ReturnType<typeof useQuotaList>;
  /** The fields differ from what the agent has. */
  dirty: boolean;
  edit: (window: QuotaWindow, field: keyof Draft, value: string) => void;
  /** Saves the edits; the error to show when a field is wrong or the agent refused, null when saved. */
  save: () => Promise<string | null>;
}

const useQuotaList = (key: string) => useUsers((s) => s.quotas[key]);

const sameDrafts = (a: Record<QuotaWindow, Draft>, b: Record<QuotaWindow, Draft>): boolean =>
  WINDOWS.every(
    ([window]) =>
      a[window].tokens.trim() === b[window].tokens.trim() && a[window].cost.trim() === b[window].cost.trim(),
  );

/** The quota fields of a user or a key, for a form that saves them (QuotaEditor, or a dialog's one Save). */
export function useQuotaDrafts(owner: QuotaOwner): QuotaDrafts {
  const stores = useStores();
  const key = quotaKey(owner);
  const loaded = useQuotaList(key);
  const [drafts, setDrafts] = useState<Record<QuotaWindow, Draft> | null>(null);

  useEffect(() => {
    void stores.users.getState().loadQuotas(owner);
    // owner is a fresh object each render; its key says whether it changed.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [stores, key]);

  const saved = draftsOf(loaded?.items ?? []);
  // Until the admin edits, the fields show what the agent has.
  const current = drafts ?? saved;
  return {
    current,
    loaded,
    dirty: drafts !== null && !sameDrafts(drafts, saved),
    edit(window, field, value) {
      setDrafts({ ...current, [window]: { ...current[window], [field]: value } });
    },
    async save() {
      const parsed = quotasFromDrafts(current);
      if ('error' in parsed) return parsed.error;
      try {
        const quotas = await stores.users.getState().setQuotas(owner, parsed.quotas);
        setDrafts(draftsOf(quotas));
        return null;
      } catch (err) {
        return (err as Error).message;
      }
    },
  };
}

/**
 * The quota fields, one row a window. Fixed column widths: a cell that grows (what is used, once saved) must not move
 * the fields the admin is typing in.
 */
export function QuotaTable({ drafts }: { drafts: QuotaDrafts }) {
  const { current, loaded, edit } = drafts;
  return (
    <>
      {loaded?.error ? (
        <p className="form-error" role="alert">
          {loaded.error.message}
        </p>
      ) : null}
      <table className="data-table quota-table">
        <colgroup>
          <col className="quota-col-window" />
          <col className="quota-col-limit" />
          <col className="quota-col-limit" />
          <col />
        </colgroup>
        <thead>
          <tr>
            <th>Window</th>
            <th>Max tokens</th>
            <th>Max cost (USD)</th>
            <th>Used now</th>
          </tr>
        </thead>
        <tbody>
          {WINDOWS.map(([window, label]) => (
            <tr key={window}>
              <td>{label}</td>
              <td>
                <input
                  aria-label={`${label}: max tokens`}
                  inputMode="numeric"
                  placeholder="no limit"
                  value={current[window].tokens}
                  onChange={(e) => edit(window, 'tokens', e.target.value)}
                />
              </td>
              <td>
                <input
                  aria-label={`${label}: max cost in USD`}
                  inputMode="decimal"
                  placeholder="no limit"
                  value={current[window].cost}
                  onChange={(e) => edit(window, 'cost', e.target.value)}
                />
              </td>
              <td>
                <Usage status={loaded?.items.find((q) => q.window === window)} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/**
 * Token and cost budgets of a user or a key, per window, with what is used and when it resets. `leaving` says the
 * admin asked to go elsewhere with unsaved edits: the editor asks to discard or save them, then calls `onLeave`.
 */
export function QuotaEditor({
  owner,
  onDirtyChange,
  leaving = false,
  onLeave,
}: {
  owner: QuotaOwner;
  onDirtyChange?: (dirty: boolean) => void;
  leaving?: boolean;
  onLeave?: () => void;
}) {
  const drafts = useQuotaDrafts(owner);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const warning = useRef<HTMLSpanElement>(null);

  useEffect(() => onDirtyChange?.(drafts.dirty), [drafts.dirty, onDirtyChange]);
  // Gone (user deleted, another one picked): nothing here is left unsaved.
  useEffect(() => () => onDirtyChange?.(false), [onDirtyChange]);
  useEffect(() => {
    // The editor may be below the fold of the details pane: show the question where the admin is looking.
    if (leaving) warning.current?.scrollIntoView({ block: 'nearest' });
  }, [leaving]);

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const failure = await drafts.save();
    setBusy(false);
    setError(failure);
    setSaved(failure === null);
    if (failure === null && leaving) onLeave?.();
  };

  return (
    <form className="quota-editor" onSubmit={(event) => void submit(event)}>
      <QuotaTable drafts={drafts} />
      <div className="form-row">
        <button type="submit" className="button small primary" disabled={busy}>
          {busy ? 'Saving…' : 'Save quotas'}
        </button>
        {leaving ? (
          <>
            <span ref={warning} className="form-error unsaved-warning" role="alert">
              These quotas have unsaved changes.
            </span>
            <button type="button" className="button small" onClick={onLeave}>
              Discard changes
            </button>
          </>
        ) : null}
        {saved && !drafts.dirty ? (
          <span className="muted">Saved: requests over a quota get 429 until it resets.</span>
        ) : null}
        {error ? (
          <span className="form-error" role="alert">
            {error}
          </span>
        ) : null}
      </div>
    </form>
  );
}
