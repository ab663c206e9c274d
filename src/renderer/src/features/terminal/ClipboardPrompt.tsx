import { useEffect, useState } from 'react';
import { clipboardSegments, clipboardSize, type ClipboardPromptState } from './clipboard';

/**
 * A program's clipboard write (OSC 52) shown before anything is copied: the whole text (escaped, in a scrolling box,
 * every invisible, bidi or control character shown as its code point, with a warning, and long blank runs counted), its size, Allow or Deny, and
 * "always allow" for the slot. The buttons answer only once the request is armed (a short while after it appears).
 * Give it `key={request.id}`, so that nothing ticked in one prompt carries over to the next.
 */
export function ClipboardPrompt({
  state,
  slotName,
  now = Date.now,
}: {
  state: ClipboardPromptState;
  slotName: string;
  now?: () => number;
}) {
  const { request, waiting, dropped } = state;
  const [always, setAlways] = useState(false);
  const [armed, setArmed] = useState(() => now() >= request.armedAt);
  useEffect(() => {
    if (armed) return;
    const timer = setTimeout(() => setArmed(true), Math.max(0, request.armedAt - now()));
    return () => clearTimeout(timer);
  }, [armed, request.armedAt, now]);
  const segments = clipboardSegments(request.text);
  const hidden = segments.filter((segment) => 'hidden' in segment).length;
  return (
    <div className="toast info clipboard-prompt" role="alertdialog" aria-label="Clipboard request">
      <span>
        {slotName} wants to copy this text to your clipboard ({clipboardSize(request.text)}):
      </span>
      <pre className="clipboard-text" tabIndex={0} aria-label="Text to copy">
        {segments.map((segment, index) =>
          'hidden' in segment ? (
            <span key={index} className="clipboard-hidden" title="invisible or control character">
              ⟨{segment.hidden}⟩
            </span>
          ) : 'blank' in segment ? (
            <span key={index} className="clipboard-blank" title="a long run of blanks">
              ⟨{segment.blank}⟩
            </span>
          ) : (
            segment.text
          ),
        )}
      </pre>
      {hidden > 0 ? (
        <span className="clipboard-warning" role="alert">
          Warning: the text holds {hidden} invisible, direction-changing or control character{hidden === 1 ? '' : 's'}{' '}
          (shown as ⟨U+…⟩). What you see elsewhere may not be what gets pasted.
        </span>
      ) : null}
      {waiting > 0 || dropped > 0 ? (
        <span className="clipboard-queue">
          {waiting > 0 ? `${waiting} more request${waiting === 1 ? '' : 's'} waiting. ` : ''}
          {dropped > 0 ? `${dropped} dropped (too many at once).` : ''}
        </span>
      ) : null}
      <label className="clipboard-always">
        <input type="checkbox" checked={always} onChange={(event) => setAlways(event.target.checked)} />
        Always allow for this slot
      </label>
      <span className="clipboard-actions">
        <button type="button" className="button small primary" disabled={!armed} onClick={() => request.allow(always)}>
          Allow
        </button>
        <button type="button" className="button small" disabled={!armed} onClick={() => request.deny()}>
          Deny
        </button>
      </span>
    </div>
  );
}
