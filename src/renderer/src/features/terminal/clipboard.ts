import type { ClipboardSelectionType, IClipboardProvider } from '@xterm/addon-clipboard';

/** A program's request (OSC 52) to put text on this computer's clipboard, waiting for the admin's answer. */
export interface ClipboardRequest {
  /** The text the program wants copied. */
  text: string;
  /** Its first characters, printable, for the prompt. */
  preview: string;
  /** Copies the text; `always`: from now on this slot's requests are copied without asking. */
  allow(always: boolean): void;
  deny(): void;
}

export interface ConsentClipboardOptions {
  /** Whether the admin switched "always allow clipboard writes" on for this slot. */
  alwaysAllowed: () => boolean;
  /** Remembers "always allow" for this slot (the admin ticked it in a prompt). */
  rememberAlways: () => void;
  /** Shows a request in the console, or hides the prompt (null). A newer request replaces one still shown. */
  show: (request: ClipboardRequest | null) => void;
  /** Writes the clipboard (navigator.clipboard.writeText by default). */
  write?: (text: string) => Promise<void>;
  /** The browser refused the write (no permission, page not focused). */
  onWriteFailed?: (error: unknown) => void;
}

const PREVIEW_CHARS = 40;

/** The first characters of a text, one line, without control characters, with … when there is more. */
export function clipboardPreview(text: string, max = PREVIEW_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/\r?\n/g, '⏎').replace(/[\u0000-\u001f\u007f-\u009f]/g, '·');
  const chars = [...flat];
  return chars.length > max ? `${chars.slice(0, max).join('')}…` : flat;
}

/**
 * The console's clipboard for OSC 52, instead of @xterm/addon-clipboard's default one (which lets any program in a
 * slot overwrite the admin's clipboard silently, and read it once reading was allowed):
 * - reading is never done: the program is told the clipboard is empty;
 * - writing waits until the console showed the text and the admin allowed it, unless the admin switched "always allow"
 *   on for the slot. The terminal does not wait for the answer: output goes on while the prompt is shown.
 */
export class ConsentClipboardProvider implements IClipboardProvider {
  private pending: ClipboardRequest | null = null;
  private disposed = false;

  constructor(private readonly options: ConsentClipboardOptions) {}

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
    const request: ClipboardRequest = {
      text,
      preview: clipboardPreview(text),
      allow: (always) => {
        if (!this.settle(request)) return;
        if (always) this.options.rememberAlways();
        this.copy(text);
      },
      deny: () => {
        this.settle(request);
      },
    };
    this.pending = request;
    this.options.show(request);
  }

  /** The console closed: a prompt still shown goes away unanswered (nothing is copied). */
  dispose(): void {
    this.disposed = true;
    if (this.pending) {
      this.pending = null;
      this.options.show(null);
    }
  }

  private settle(request: ClipboardRequest): boolean {
    if (this.pending !== request || this.disposed) return false;
    this.pending = null;
    this.options.show(null);
    return true;
  }

  private copy(text: string): void {
    const write = this.options.write ?? ((value: string) => navigator.clipboard.writeText(value));
    void write(text).catch((error: unknown) => this.options.onWriteFailed?.(error));
  }
}
