import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ReleaseLine } from '../contract/release.js';

/**
 * Prints ReleaseLines (one JSON object a line) for the panel, and keeps a copy in the release log on the host. A
 * release command must finish even when the SSH connection that started it drops: SIGHUP is ignored and a write to
 * the gone stdout (EPIPE) is dropped, so the host is never left half-upgraded.
 */
export class ReleaseReporter {
  private outputGone = false;

  constructor(
    private logFile: string | null,
    private readonly write: (text: string) => void = (text) => process.stdout.write(text),
  ) {}

  /** Makes this process outlive its SSH session. */
  static detachFromSession(): void {
    process.on('SIGHUP', () => undefined);
    process.stdout.on('error', () => undefined);
    process.stderr.on('error', () => undefined);
  }

  emit(line: ReleaseLine): void {
    const text = `${JSON.stringify(line)}\n`;
    if (!this.outputGone) {
      try {
        this.write(text);
      } catch {
        this.outputGone = true;
      }
    }
    if (this.logFile) {
      try {
        mkdirSync(dirname(this.logFile), { recursive: true });
        appendFileSync(this.logFile, `${new Date().toISOString()} ${text}`);
      } catch {
        // The log is a courtesy (uninstall removes its folder); the panel has the lines.
      }
    }
  }

  /** Runs one step: `running`, then `done` with what it returns, or `failed` with the error's message. */
  async step<T>(step: string, label: string, run: () => Promise<T> | T, detail?: (value: T) => string): Promise<T> {
    this.emit({ kind: 'step', step, label, state: 'running' });
    try {
      const value = await run();
      const text = detail?.(value);
      this.emit({ kind: 'step', step, label, state: 'done', ...(text ? { detail: text } : {}) });
      return value;
    } catch (error) {
      this.emit({ kind: 'step', step, label, state: 'failed', detail: (error as Error).message });
      throw error;
    }
  }

  /** Stops copying lines into the log (before its folder is removed). */
  stopLogging(): void {
    this.logFile = null;
  }

  skipped(step: string, label: string, detail: string): void {
    this.emit({ kind: 'step', step, label, state: 'skipped', detail });
  }

  note(text: string): void {
    this.emit({ kind: 'note', text });
  }
}
