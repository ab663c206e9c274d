import { describe, expect, it } from 'vitest';
import { CHARS_PER_TOKEN, StreamUsageTracker } from '../../../../remote-agent/src/modules/gateway/stream-usage.js';

const event = (type: string, data: object, eol = '\n'): string =>
  `event: ${type}${eol}data: ${JSON.stringify({ type, ...data })}${eol}${eol}`;

const STREAM = [
  event('message_start', {
    message: {
      model: 'claude-opus-4-6',
      usage: { input_tokens: 410, output_tokens: 1, cache_creation_input_tokens: 2048, cache_read_input_tokens: 96 },
    },
  }),
  event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
  event('ping', {}),
  event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'usage: {"output_tokens": 999}' } }),
  event('content_block_stop', { index: 0 }),
  event('message_delta', { delta: { stop_reason: null }, usage: { output_tokens: 40 } }),
  event('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 75 } }),
  event('message_stop', {}),
].join('');

function feedInPieces(text: string, size: number): { tracker: StreamUsageTracker; stopAt: number[] } {
  const tracker = new StreamUsageTracker();
  const bytes = Buffer.from(text);
  const stopAt: number[] = [];
  for (let at = 0; at < bytes.length; at += size) {
    if (tracker.feed(bytes.subarray(at, at + size))) stopAt.push(at);
  }
  return { tracker, stopAt };
}

describe('StreamUsageTracker', () => {
  it('takes input and cache tokens from message_start and the latest cumulative output_tokens', () => {
    const { tracker } = feedInPieces(STREAM, STREAM.length);
    expect(tracker.usage).toEqual({
      model: 'claude-opus-4-6',
      inputTokens: 410,
      outputTokens: 75,
      cacheCreationTokens: 2048,
      cacheReadTokens: 96,
      cacheCreation1hTokens: 0,
      webSearchRequests: 0,
      serviceTier: null,
      errorType: null,
      outputEstimated: false,
    });
    expect(tracker.stopped).toBe(true);
  });

  it('reads web searches and the service tier from the final message_delta, as totals', () => {
    const stream =
      event('message_start', { message: { model: 'm', usage: { input_tokens: 10, output_tokens: 1 } } }) +
      event('message_delta', { usage: { output_tokens: 5, server_tool_use: { web_search_requests: 2 } } }) +
      event('message_delta', {
        usage: { output_tokens: 9, server_tool_use: { web_search_requests: 3 }, service_tier: 'priority' },
      }) +
      event('message_stop', {});
    const { tracker } = feedInPieces(stream, 5);
    expect(tracker.usage).toMatchObject({ outputTokens: 9, webSearchRequests: 3, serviceTier: 'priority' });
  });

  it.each([1, 3, 7, 64])('reads the same usage when the stream arrives in %i-byte pieces', (size) => {
    const { tracker, stopAt } = feedInPieces(STREAM, size);
    expect(tracker.usage.outputTokens).toBe(75);
    expect(tracker.usage.cacheCreationTokens).toBe(2048);
    // Exactly one piece completes message_stop: the last one.
    expect(stopAt).toHaveLength(1);
    expect(stopAt[0]).toBe(Math.floor((Buffer.byteLength(STREAM) - 1) / size) * size);
  });

  it('reads streams with CRLF line ends and multi-byte text split across pieces', () => {
    const text = [
      event('message_start', { message: { model: 'm', usage: { input_tokens: 5, output_tokens: 1 } } }, '\r\n'),
      event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'héllo ✓ 你好' } }, '\r\n'),
      event('message_delta', { usage: { output_tokens: 9 } }, '\r\n'),
      event('message_stop', {}, '\r\n'),
    ].join('');
    const { tracker, stopAt } = feedInPieces(text, 5);
    expect(tracker.usage).toMatchObject({ inputTokens: 5, outputTokens: 9 });
    expect(stopAt).toHaveLength(1);
  });

  it('notes an error event sent mid-stream', () => {
    const text =
      event('message_start', { message: { model: 'm', usage: { input_tokens: 5, output_tokens: 1 } } }) +
      event('error', { error: { type: 'overloaded_error', message: 'Overloaded' } });
    const { tracker } = feedInPieces(text, 11);
    expect(tracker.usage.errorType).toBe('overloaded_error');
    expect(tracker.stopped).toBe(false);
  });

  it('keeps input counts that a newer message_delta repeats, without adding them up', () => {
    const text =
      event('message_start', { message: { model: 'm', usage: { input_tokens: 100, cache_read_input_tokens: 20 } } }) +
      event('message_delta', { usage: { output_tokens: 3, input_tokens: 100, cache_read_input_tokens: 20 } }) +
      event('message_delta', { usage: { output_tokens: 8, input_tokens: 100, cache_read_input_tokens: 20 } });
    const { tracker } = feedInPieces(text, text.length);
    expect(tracker.usage).toMatchObject({ inputTokens: 100, cacheReadTokens: 20, outputTokens: 8 });
  });

  it('meters a whole JSON message', () => {
    const tracker = new StreamUsageTracker();
    tracker.applyMessage({
      model: 'claude-haiku-4-5',
      usage: { input_tokens: 12, output_tokens: 34, cache_creation_input_tokens: null, cache_read_input_tokens: 7 },
    });
    expect(tracker.usage).toMatchObject({
      model: 'claude-haiku-4-5',
      inputTokens: 12,
      outputTokens: 34,
      cacheCreationTokens: 0,
      cacheReadTokens: 7,
    });
  });

  it('estimates output from the content that went by until message_delta says the real count', () => {
    const start = event('message_start', { message: { model: 'm', usage: { input_tokens: 10, output_tokens: 1 } } });
    const text = event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'x'.repeat(300) } });
    const tool = event('content_block_delta', {
      index: 1,
      delta: { type: 'input_json_delta', partial_json: '{"a":"' + 'y'.repeat(58) },
    });
    const thinking = event('content_block_delta', {
      index: 2,
      delta: { type: 'thinking_delta', thinking: 'z'.repeat(30) },
    });
    const { tracker } = feedInPieces(start + text + tool + thinking, 5);
    // 300 + 64 + 30 characters at CHARS_PER_TOKEN each, rounded up; never less than message_start's count.
    expect(tracker.usage.outputTokens).toBe(Math.ceil(394 / CHARS_PER_TOKEN));
    expect(tracker.usage.outputEstimated).toBe(true);
    // Upstream's count wins once it comes, lower or not.
    tracker.feed(Buffer.from(event('message_delta', { usage: { output_tokens: 90 } })));
    expect(tracker.usage).toMatchObject({ outputTokens: 90, outputEstimated: false });
  });

  it('keeps message_start’s output count when the content is shorter than it', () => {
    const start = event('message_start', { message: { model: 'm', usage: { input_tokens: 10, output_tokens: 50 } } });
    const text = event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'hi' } });
    const { tracker } = feedInPieces(start + text, 7);
    expect(tracker.usage).toMatchObject({ outputTokens: 50, outputEstimated: false });
  });

  it('reads 1-hour cache writes out of usage.cache_creation', () => {
    const start = event('message_start', {
      message: {
        model: 'm',
        usage: {
          input_tokens: 10,
          output_tokens: 1,
          cache_creation_input_tokens: 500,
          cache_creation: { ephemeral_5m_input_tokens: 200, ephemeral_1h_input_tokens: 300 },
        },
      },
    });
    const { tracker } = feedInPieces(start, 9);
    expect(tracker.usage).toMatchObject({ cacheCreationTokens: 500, cacheCreation1hTokens: 300 });
    const whole = new StreamUsageTracker();
    whole.applyMessage({
      model: 'm',
      usage: {
        input_tokens: 1,
        output_tokens: 2,
        cache_creation_input_tokens: 40,
        cache_creation: { ephemeral_1h_input_tokens: 40 },
      },
    });
    expect(whole.usage).toMatchObject({ cacheCreationTokens: 40, cacheCreation1hTokens: 40 });
  });
});
