import { useEffect, useId } from 'react';
import { useStore } from 'zustand';
import { createStore } from 'zustand/vanilla';
import { useStores, useUi } from '../stores';

/**
 * The dialogs on screen, newest last. While one is open, notices show inside it, between its body and its footer,
 * where they cover none of its buttons (over the page's corner they hid the dialog's Save).
 */
const openDialogs = createStore<{ ids: string[] }>()(() => ({ ids: [] }));

/** Registers the calling dialog while it is mounted; true when it is the topmost one (the one that shows notices). */
export function useTopmostDialog(): boolean {
  const id = useId();
  useEffect(() => {
    openDialogs.setState((state) => ({ ids: [...state.ids, id] }));
    return () => openDialogs.setState((state) => ({ ids: state.ids.filter((other) => other !== id) }));
  }, [id]);
  return useStore(openDialogs, (state) => state.ids[state.ids.length - 1] === id);
}

function ToastList({ className }: { className: string }) {
  const toasts = useUi((s) => s.toasts);
  const { ui } = useStores();
  if (toasts.length === 0) return null;
  return (
    <div className={className} aria-live="polite">
      {toasts.map((toast) => (
        <div key={toast.id} className={`toast ${toast.kind}`} role={toast.kind === 'error' ? 'alert' : 'status'}>
          <span>{toast.message}</span>
          <button
            type="button"
            className="icon-button"
            aria-label="Dismiss"
            onClick={() => ui.getState().dismiss(toast.id)}
          >
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

/** The page's notices, bottom right; inside the topmost dialog while one is open. */
export function Toasts() {
  const dialogOpen = useStore(openDialogs, (state) => state.ids.length > 0);
  return dialogOpen ? null : <ToastList className="toasts" />;
}

/** The notices as the topmost dialog shows them, above its footer. */
export function DialogToasts() {
  return <ToastList className="dialog-toasts" />;
}
