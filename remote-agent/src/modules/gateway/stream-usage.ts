/**
 * Reads the usage out of a Messages API event stream as it passes through, without holding it: only the few events
 * that carry usage are parsed (message_start, message_delta, error); content deltas are skipped by their event line.
 * input and cache tokens come from message_start; output_tokens in message_delta is cumulative, so the latest wins.
 */
export interface StreamUsage {
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
  /** The stream's own error event (`event: error`), if upstream sent one mid-stream. */
  errorType: string | null;
}

interface UsageFields {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

const count = (value: number | null | undefined): number | null =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;

export class StreamUsageTracker {
  readonly usage: StreamUsage = {
    model: null,
    inputTokens: 0,
    outputTokens: 0,
    cacheCreationTokens: 0,
    cacheReadTokens: 0,
    errorType: null,
  };
  /** True once message_stop went by: the response is complete. */
  stopped = false;
  private partial = '';
  private readonly decoder = new TextDecoder();

  /** Takes the next piece of the stream; returns true when this piece completes the message_stop event. */
  feed(chunk: Uint8Array): boolean {
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    let start = 0;
    let completedStop = false;
    for (;;) {
      const end = findEventEnd(text, start);
      if (end === -1) break;
      if (this.handleEvent(text, start, end)) completedStop = true;
      start = end + (text.charCodeAt(end) === 13 ? 4 : 2);
    }
    this.partial = text.slice(start);
    return completedStop;
  }

  /** Applies a whole JSON message (a non-streaming answer). */
  applyMessage(message: unknown): void {
    const body = message as { model?: unknown; usage?: UsageFields } | null;
    if (typeof body?.model === 'string') this.usage.model = body.model;
    this.applyUsage(body?.usage, true);
  }

  private handleEvent(text: string, start: number, end: number): boolean {
    // Event lines come first; skip everything that cannot carry usage without parsing its JSON.
    const block = text.slice(start, end);
    const type = /^event:\s*([a-z_]+)/m.exec(block)?.[1];
    if (type === 'message_stop') {
      this.stopped = true;
      return true;
    }
    if (type !== 'message_start' && type !== 'message_delta' && type !== 'error') return false;
    const data = block
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trimStart())
      .join('\n');
    let event: { message?: { model?: string; usage?: UsageFields }; usage?: UsageFields; error?: { type?: string } };
    try {
      event = JSON.parse(data) as typeof event;
    } catch {
      return false;
    }
    if (type === 'message_start') {
      if (typeof event.message?.model === 'string') this.usage.model = event.message.model;
      this.applyUsage(event.message?.usage, true);
    } else if (type === 'message_delta') {
      this.applyUsage(event.usage, false);
    } else {
      this.usage.errorType = typeof event.error?.type === 'string' ? event.error.type : 'api_error';
    }
    return false;
  }

  private applyUsage(usage: UsageFields | undefined, whole: boolean): void {
    if (!usage) return;
    const output = count(usage.output_tokens);
    if (output !== null) this.usage.outputTokens = output;
    // message_delta may repeat input and cache counts (newer API versions do); they are totals too, never sums.
    const input = count(usage.input_tokens);
    if (input !== null && (whole || input > 0)) this.usage.inputTokens = input;
    const cacheWrite = count(usage.cache_creation_input_tokens);
    if (cacheWrite !== null && (whole || cacheWrite > 0)) this.usage.cacheCreationTokens = cacheWrite;
    const cacheRead = count(usage.cache_read_input_tokens);
    if (cacheRead !== null && (whole || cacheRead > 0)) this.usage.cacheReadTokens = cacheRead;
  }
}

/** Index of the blank line ending the event that starts at `from`, or -1 when the event is not complete yet. */
function findEventEnd(text: string, from: number): number {
  const lf = text.indexOf('\n\n', from);
  const crlf = text.indexOf('\r\n\r\n', from);
  if (lf === -1) return crlf;
  if (crlf === -1) return lf;
  return Math.min(lf, crlf);
}
