import { cloneElement, useEffect, useId, useLayoutEffect, useRef, type ReactElement, type ReactNode } from 'react';
import { DialogToasts, useTopmostDialog } from './Toasts';

interface DialogProps {
  title: string;
  onClose: () => void;
  children: ReactNode;
  footer?: ReactNode;
  tone?: 'normal' | 'danger';
  width?: number;
}

/** A modal dialog: Escape and the backdrop close it; focus starts inside and Tab stays inside. */
export function Dialog({ title, onClose, children, footer, tone = 'normal', width = 520 }: DialogProps) {
  const ref = useRef<HTMLDivElement>(null);
  const topmost = useTopmostDialog();
  // The latest onClose, read when a key is pressed: callers pass a new function on every render, and re-running the
  // effect below for each would move focus back to the first field while the admin types (any store update does).
  const onCloseRef = useRef(onClose);
  useLayoutEffect(() => {
    onCloseRef.current = onClose;
  });
  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>(
      '[autofocus], input, select, textarea, button:not(.dialog-close)',
    );
    first?.focus();
    const onKey = (event: KeyboardEvent): void => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        onCloseRef.current();
      }
      if (event.key === 'Tab' && ref.current) {
        const focusable = [
          ...ref.current.querySelectorAll<HTMLElement>(
            'button, input, select, textarea, [tabindex]:not([tabindex="-1"])',
          ),
        ].filter((el) => !el.hasAttribute('disabled'));
        const [head, tail] = [focusable[0], focusable[focusable.length - 1]];
        if (event.shiftKey && document.activeElement === head) {
          event.preventDefault();
          tail?.focus();
        } else if (!event.shiftKey && document.activeElement === tail) {
          event.preventDefault();
          head?.focus();
        }
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      previous?.focus();
    };
  }, []);
  return (
    <div className="backdrop" onMouseDown={(event) => event.target === event.currentTarget && onClose()}>
      <div ref={ref} className={`dialog ${tone}`} role="dialog" aria-modal="true" aria-label={title} style={{ width }}>
        <header className="dialog-header">
          <h2>{title}</h2>
          <button type="button" className="icon-button dialog-close" aria-label="Close" onClick={onClose}>
            ×
          </button>
        </header>
        <div className="dialog-body">{children}</div>
        {topmost ? <DialogToasts /> : null}
        {footer ? <footer className="dialog-footer">{footer}</footer> : null}
      </div>
    </div>
  );
}

/**
 * A labelled form control: the label names the control and the hint (or the error) describes it, as screen readers
 * expect (the label's text alone is the control's name).
 */
export function Field({
  label,
  hint,
  error,
  children,
}: {
  label: string;
  hint?: ReactNode;
  error?: string | undefined;
  children: ReactElement<Record<string, unknown>>;
}) {
  const id = useId();
  const noteId = `${id}-note`;
  const note = error ?? hint;
  return (
    <div className={`field ${error ? 'has-error' : ''}`}>
      <label className="field-label" htmlFor={id}>
        {label}
      </label>
      {cloneElement(children, {
        id,
        ...(note ? { 'aria-describedby': noteId } : {}),
        ...(error ? { 'aria-invalid': true } : {}),
      })}
      {note ? (
        <span id={noteId} className={error ? 'field-error' : 'field-hint'}>
          {note}
        </span>
      ) : null}
    </div>
  );
}

/** A form dialog's footer: Cancel, and the submit button of the form `form` (disabled while it is busy). */
export function FormFooter({
  form,
  busy,
  label,
  busyLabel,
  onCancel,
  start,
}: {
  form: string;
  busy: boolean;
  label: string;
  busyLabel: string;
  onCancel: () => void;
  /** Buttons on the left, before the spacer. */
  start?: ReactNode;
}) {
  return (
    <>
      {start}
      <span className="spacer" />
      <button type="button" className="button" onClick={onCancel}>
        Cancel
      </button>
      <button type="submit" form={form} className="button primary" disabled={busy}>
        {busy ? busyLabel : label}
      </button>
    </>
  );
}
