import type { ClipboardSelectionType, IClipboardProvider } from '@xterm/addon-clipboard';

/** A program's request (OSC 52) to put text on this computer's clipboard, waiting for the admin's answer. */
export interface ClipboardRequest {
  /** Tells requests apart (the prompt is keyed by it, so nothing the admin did in one carries over to the next). */
  id: number;
  /** The text the program wants copied, whole. */
  text: string;
  /** When the prompt may be answered (the provider's clock): clicks before are ignored (see CLICK_GUARD_MS). */
  armedAt: number;
  /** Copies the text; `always`: from now on this slot's requests are copied without asking. Ignored before armedAt. */
  allow(always: boolean): void;
  /** Copies nothing. Ignored before armedAt. */
  deny(): void;
}

/** What the console shows: the oldest request still unanswered, and how many wait behind it or were dropped. */
export interface ClipboardPromptState {
  request: ClipboardRequest;
  /** Requests waiting behind this one (shown, one after the other, once it is answered). */
  waiting: number;
  /** Requests dropped because too many were waiting. */
  dropped: number;
}

export interface ConsentClipboardOptions {
  /** Whether the admin switched "always allow clipboard writes" on for this slot. */
  alwaysAllowed: () => boolean;
  /** Remembers "always allow" for this slot (the admin ticked it in a prompt). */
  rememberAlways: () => void;
  /**
   * Shows the oldest unanswered request, or hides the prompt (null). A newer request never replaces the one shown: it
   * waits behind it.
   */
  show: (state: ClipboardPromptState | null) => void;
  /** Writes the clipboard (navigator.clipboard.writeText by default). */
  write?: (text: string) => Promise<void>;
  /** The browser refused the write (no permission, page not focused). */
  onWriteFailed?: (error: unknown) => void;
  /** The clock for the click guard (Date.now by default). */
  now?: () => number;
}

/**
 * A prompt ignores clicks for this long after it appears, so that a program cannot time a request to pop up under
 * the admin's cursor just as they click.
 */
export const CLICK_GUARD_MS = 500;
/** Requests waiting behind the one shown; later ones are dropped (and counted) until the queue drains. */
export const MAX_WAITING = 20;

/**
 * Characters that show nothing or change how the text around them shows: control characters (except line feed and
 * tab), format characters (bidi embeddings, overrides and isolates U+202A–U+202E and U+2066–U+2069, the marks
 * U+200E/U+200F/U+061C, zero-width U+200B–U+200D, U+2060–U+2064, U+FEFF, the soft hyphen, tags), the line and
 * paragraph separators, and the Hangul fillers and the combining grapheme joiner, which look like nothing.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u034f\u115f\u1160\u3164\uffa0]/u;

/**
 * A piece of the text as the prompt shows it: plain text; one invisible character, named by its code point (`hidden`,
 * shown as ⟨U+202E⟩); or a long run of blanks (`blank`, shown as ⟨1,000 spaces⟩), which would otherwise push the rest
 * of the text out of view.
 */
export type ClipboardSegment = { text: string } | { hidden: string } | { blank: string };

/** Runs of blanks at least this long, or with this many line breaks, are shown as a count. */
const LONG_BLANK_CHARS = 32;
const LONG_BLANK_LINES = 4;

const codePoint = (char: string): string => `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
const counted = (n: number, noun: string): string => `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;

function blankLabel(run: string): string {
  const breaks = [...run].filter((char) => char === '\n').length;
  const spaces = [...run].filter((char) => char === ' ').length;
  const tabs = run.length - breaks - spaces;
  return [
    spaces ? counted(spaces, 'space') : '',
    tabs ? counted(tabs, 'tab') : '',
    breaks ? counted(breaks, 'line break') : '',
  ]
    .filter(Boolean)
    .join(', ');
}

/**
 * The text split for display: every invisible, bidi or control character becomes a `hidden` segment named by its
 * code point; a long run of spaces, tabs and line breaks becomes a `blank` one that says what it holds; other line
 * feeds (and CR LF), tabs and spaces stay as they are.
 */
export function clipboardSegments(text: string): ClipboardSegment[] {
  const segments: ClipboardSegment[] = [];
  let plain = '';
  const flush = (): void => {
    if (plain) segments.push({ text: plain });
    plain = '';
  };
  for (const piece of text.replace(/\r\n/g, '\n').split(/([ \t\n]+)/)) {
    const breaks = piece.split('\n').length - 1;
    if (/^[ \t\n]+$/.test(piece) && (piece.length >= LONG_BLANK_CHARS || breaks >= LONG_BLANK_LINES)) {
      flush();
      segments.push({ blank: blankLabel(piece) });
      continue;
    }
    for (const char of piece) {
      if (char !== '\n' && char !== '\t' && INVISIBLE.test(char)) {
        flush();
        segments.push({ hidden: codePoint(char) });
      } else {
        plain += char;
      }
    }
  }
  flush();
  return segments;
}

/** The text as one string, with ⟨U+XXXX⟩ for each invisible character and ⟨N spaces⟩ for each long blank run. */
export function clipboardDisplay(text: string): string {
  return clipboardSegments(text)
    .map((segment) => ('text' in segment ? segment.text : `⟨${'hidden' in segment ? segment.hidden : segment.blank}⟩`))
    .join('');
}

/** Whether the text holds characters that do not show as themselves (see clipboardSegments). */
export function hasInvisible(text: string): boolean {
  return clipboardSegments(text).some((segment) => 'hidden' in segment);
}

/** "1,043 characters, 2 lines". */
export function clipboardSize(text: string): string {
  const chars = [...text].length;
  const lines = text.replace(/\r\n/g, '\n').split('\n').length;
  return `${counted(chars, 'character')}, ${counted(lines, 'line')}`;
}

/**
 * The console's clipboard for OSC 52, instead of @xterm/addon-clipboard's default one (which lets any program in a
 * slot overwrite the admin's clipboard silently, and read it once reading was allowed):
 * - reading is never done: the program is told the clipboard is empty;
 * - writing waits until the console showed the text and the admin allowed it, unless the admin switched "always allow"
 *   on for the slot. The terminal does not wait for the answer: output goes on while the prompt is shown.
 * - requests are answered in order: the oldest stays shown, newer ones wait (up to MAX_WAITING, then are dropped);
 * - a prompt ignores answers for CLICK_GUARD_MS after it appears.
 */
export class ConsentClipboardProvider implements IClipboardProvider {
  private readonly queue: ClipboardRequest[] = [];
  private dropped = 0;
  private nextId = 1;
  private disposed = false;
  private readonly now: () => number;

  constructor(private readonly options: ConsentClipboardOptions) {
    this.now = options.now ?? Date.now;
  }

  readText(_selection: ClipboardSelectionType): string {
    return '';
  }

  writeText(selection: ClipboardSelectionType, text: string): void {
    // Only the system clipboard ("c", or the default when none is named); never a clear (empty or invalid data).
    const which = selection as string;
    if (this.disposed || !text || !(which === '' || which.includes('c'))) return;
    if (this.options.alwaysAllowed()) {
      this.copy(text);
      return;
    }
    if (this.queue.length > MAX_WAITING) {
      this.dropped += 1;
      this.render();
      return;
    }
    const request: ClipboardRequest = {
      id: this.nextId++,
      text,
      armedAt: Number.POSITIVE_INFINITY,
      allow: (always) => {
        if (!this.settle(request)) return;
        if (always) this.options.rememberAlways();
        this.copy(text);
      },
      deny: () => {
        this.settle(request);
      },
    };
    this.queue.push(request);
    if (this.queue.length === 1) request.armedAt = this.now() + CLICK_GUARD_MS;
    this.render();
  }

  /** The console closed: prompts still shown or waiting go away unanswered (nothing is copied). */
  dispose(): void {
    this.disposed = true;
    if (this.queue.length > 0) {
      this.queue.length = 0;
      this.options.show(null);
    }
  }

  /** Ends the request shown, if `request` is it and its prompt is armed; shows the next one. */
  private settle(request: ClipboardRequest): boolean {
    if (this.disposed || this.queue[0] !== request || this.now() < request.armedAt) return false;
    this.queue.shift();
    const next = this.queue[0];
    if (next) next.armedAt = this.now() + CLICK_GUARD_MS;
    else this.dropped = 0;
    this.render();
    return true;
  }

  private render(): void {
    const [request] = this.queue;
    this.options.show(request ? { request, waiting: this.queue.length - 1, dropped: this.dropped } : null);
  }

  private copy(text: string): void {
    const write = this.options.write ?? ((value: string) => navigator.clipboard.writeText(value));
    void write(text).catch((error: unknown) => this.options.onWriteFailed?.(error));
  }
}
