import { useState, type InputHTMLAttributes, type ReactNode } from 'react';
import { describeError } from '../lib/api';

/** An error from the agent, announced to screen readers. */
export function ErrorNote({ error, testId = 'error' }: { error: unknown; testId?: string }): ReactNode {
  if (error === null || error === undefined) return null;
  return (
    <p className="error" role="alert" data-testid={testId}>
      {describeError(error)}
    </p>
  );
}

/** A labelled text input: the label wraps the input (so a click on it focuses the field); onValue gets the new text. */
export function Field({
  label,
  onValue,
  ...input
}: { label: ReactNode; onValue: (value: string) => void } & Omit<
  InputHTMLAttributes<HTMLInputElement>,
  'onChange'
>): ReactNode {
  return (
    <label>
      {label}
      <input {...input} onChange={(event) => onValue(event.target.value)} />
    </label>
  );
}

/** A button that copies text, saying so for a moment. */
export function CopyButton({ text, label, testId }: { text: string; label: string; testId?: string }): ReactNode {
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  return (
    <button
      type="button"
      className="secondary"
      data-testid={testId}
      onClick={() => {
        navigator.clipboard.writeText(text).then(
          () => setCopied('yes'),
          () => setCopied('failed'),
        );
        setTimeout(() => setCopied(null), 2000);
      }}
    >
      {copied === 'yes' ? 'Copied' : copied === 'failed' ? 'Select and copy' : label}
    </button>
  );
}

/** Runs an async action with a busy flag and its error. */
export function useAction(): {
  busy: boolean;
  error: unknown;
  run: (action: () => Promise<unknown>) => Promise<boolean>;
  setError: (error: unknown) => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (action: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    try {
      await action();
      return true;
    } catch (caught) {
      setError(caught);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

export function formatDate(iso: string | null): string {
  if (!iso) return 'never';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}
