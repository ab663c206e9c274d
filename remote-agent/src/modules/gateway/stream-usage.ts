/**
 * Reads the usage out of a Messages API event stream as it passes through, without holding it: only the events that
 * carry usage (message_start, message_delta, error) and content deltas are parsed; the rest is skipped by its event
 * line. input and cache tokens come from message_start; output_tokens in message_delta is cumulative, so the latest
 * wins. Until the first message_delta, output is estimated from the content that went by (see CHARS_PER_TOKEN), so
 * that a client that leaves before message_delta is still metered for what it received.
 */
export interface StreamUsage {
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
  /** The part of cacheCreationTokens written to the 1-hour cache. */
  cacheCreation1hTokens: number;
  /** Server-side web searches (usage.server_tool_use.web_search_requests): billed per search on top of tokens. */
  webSearchRequests: number;
  /** usage.service_tier when upstream said it ("standard", "priority", "batch"); null when it did not. */
  serviceTier: string | null;
  /** The stream's own error event (`event: error`), if upstream sent one mid-stream. */
  errorType: string | null;
  /** True while outputTokens is the estimate from content deltas (no message_delta has said the real count yet). */
  outputEstimated: boolean;
}

/**
 * Characters of streamed content (text, tool input JSON, thinking) counted as one output token when a stream ends
 * before upstream said its output count. Claude's tokenizer averages about 3.5-4 characters a token on English text
 * and fewer on code and JSON; 3 errs towards counting more, so that leaving early never pays.
 */
export const CHARS_PER_TOKEN = 3;

interface UsageFields {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation?: { ephemeral_1h_input_tokens?: number | null; ephemeral_5m_input_tokens?: number | null } | null;
  server_tool_use?: { web_search_requests?: number | null } | null;
  service_tier?: unknown;
}

interface ContentDelta {
  delta?: { text?: unknown; partial_json?: unknown; thinking?: unknown };
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
    cacheCreation1hTokens: 0,
    webSearchRequests: 0,
    serviceTier: null,
    errorType: null,
    outputEstimated: false,
  };
  /** True once message_start went by: input and cache tokens are known. */
  started = false;
  /** True once message_stop went by: the response is complete. */
  stopped = false;
  private partial = '';
  /** Output tokens as upstream last reported them (message_start's count until the first message_delta). */
  private reportedOutput = 0;
  private deltaSeen = false;
  private contentChars = 0;
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
    // Started even when its JSON is broken: nothing more about input would come.
    if (type === 'message_start') this.started = true;
    if (type !== 'message_start' && type !== 'message_delta' && type !== 'error' && type !== 'content_block_delta')
      return false;
    const data = block
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trimStart())
      .join('\n');
    let event: {
      message?: { model?: string; usage?: UsageFields };
      usage?: UsageFields;
      error?: { type?: string };
    } & ContentDelta;
    try {
      event = JSON.parse(data) as typeof event;
    } catch {
      return false;
    }
    if (type === 'content_block_delta') {
      this.countContent(event);
    } else if (type === 'message_start') {
      if (typeof event.message?.model === 'string') this.usage.model = event.message.model;
      this.applyUsage(event.message?.usage, true);
    } else if (type === 'message_delta') {
      if (event.usage && count(event.usage.output_tokens) !== null) this.deltaSeen = true;
      this.applyUsage(event.usage, false);
    } else {
      this.usage.errorType = typeof event.error?.type === 'string' ? event.error.type : 'api_error';
    }
    return false;
  }

  private countContent(event: ContentDelta): void {
    const delta = event.delta;
    if (!delta) return;
    for (const piece of [delta.text, delta.partial_json, delta.thinking]) {
      if (typeof piece === 'string') this.contentChars += piece.length;
    }
    this.settleOutput();
  }

  /** Output is what upstream said once a message_delta did; before that, never less than the content's estimate. */
  private settleOutput(): void {
    if (this.deltaSeen) {
      this.usage.outputTokens = this.reportedOutput;
      this.usage.outputEstimated = false;
      return;
    }
    const estimate = Math.ceil(this.contentChars / CHARS_PER_TOKEN);
    this.usage.outputEstimated = estimate > this.reportedOutput;
    this.usage.outputTokens = Math.max(estimate, this.reportedOutput);
  }

  private applyUsage(usage: UsageFields | undefined, whole: boolean): void {
    if (!usage) return;
    const output = count(usage.output_tokens);
    if (output !== null) this.reportedOutput = output;
    this.settleOutput();
    // message_delta may repeat input and cache counts (newer API versions do); they are totals too, never sums.
    const input = count(usage.input_tokens);
    if (input !== null && (whole || input > 0)) this.usage.inputTokens = input;
    const cacheWrite = count(usage.cache_creation_input_tokens);
    if (cacheWrite !== null && (whole || cacheWrite > 0)) this.usage.cacheCreationTokens = cacheWrite;
    const cacheRead = count(usage.cache_read_input_tokens);
    if (cacheRead !== null && (whole || cacheRead > 0)) this.usage.cacheReadTokens = cacheRead;
    const oneHour = count(usage.cache_creation?.ephemeral_1h_input_tokens);
    if (oneHour !== null && (whole || oneHour > 0)) this.usage.cacheCreation1hTokens = oneHour;
    // A total like the others (a stream reports it with message_delta), never a sum.
    const searches = count(usage.server_tool_use?.web_search_requests);
    if (searches !== null && (whole || searches > 0)) this.usage.webSearchRequests = searches;
    if (typeof usage.service_tier === 'string') this.usage.serviceTier = usage.service_tier.slice(0, 40);
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
