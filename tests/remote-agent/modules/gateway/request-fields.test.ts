import { describe, expect, it } from 'vitest';
import { readTopLevelFields } from '../../../../remote-agent/src/modules/gateway/request-fields.js';

const read = (text: string): { model?: unknown; stream?: unknown } | null => {
  const fields = readTopLevelFields(Buffer.from(text), ['model', 'stream']);
  // Absent fields read as undefined, as on a parsed object.
  return fields && { model: fields.model, stream: fields.stream };
};

describe('readTopLevelFields', () => {
  it('finds model and stream wherever they are, after large nested content', () => {
    const body = {
      max_tokens: 1024,
      system: [{ type: 'text', text: 'You are {helpful} [really] "quoted" \\ backslash \\\\" tricky' }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: '{"model": "not-this-one", "stream": false}' }] },
        { role: 'assistant', content: 'ünïcødé ✓ 你好 "model"' },
      ],
      tools: [{ name: 't', input_schema: { type: 'object', properties: { a: { type: ['string', 'null'] } } } }],
      model: 'claude-opus-4-6',
      metadata: { user_id: null },
      stream: true,
      temperature: -0.5e-3,
    };
    expect(read(JSON.stringify(body))).toEqual({ model: 'claude-opus-4-6', stream: true });
    expect(read(JSON.stringify(body, null, 2))).toEqual({ model: 'claude-opus-4-6', stream: true });
  });

  it('agrees with JSON.parse on many generated bodies', () => {
    const pieces = ['a', '"', '\\', '{', '}', '[', ']', ',', ':', ' ', '\n', 'é', '✓', '\u0000', 'model', 'stream'];
    // mulberry32: a small, well-mixed PRNG, so that every run checks the same 500 bodies.
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    const text = (): string => Array.from({ length: random(30) }, () => pieces[random(pieces.length)]).join('');
    // Keys as clients write them: no escapes (the scanner leaves escaped keys to JSON.parse, tested below).
    const keyPieces = ['a', 'b', '_', '-', 'é', '✓', ' ', '{', ']', ':', 'model', 'stream'];
    const key = (): string => Array.from({ length: 1 + random(5) }, () => keyPieces[random(keyPieces.length)]).join('');
    const value = (depth: number): unknown => {
      const kind = random(depth > 2 ? 4 : 6);
      if (kind === 0) return text();
      if (kind === 1) return random(1000) - 500;
      if (kind === 2) return [true, false, null][random(3)];
      if (kind === 3) return random(2) === 0 ? 1.5e10 : -0.25;
      if (kind === 4) return Array.from({ length: random(4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: random(4) }, () => [key(), value(depth + 1)]));
    };
    let trickyModels = 0;
    for (let i = 0; i < 500; i++) {
      const body: Record<string, unknown> = Object.fromEntries(
        Array.from({ length: random(6) }, () => [key(), value(0)]),
      );
      if (random(2)) body.model = random(2) ? text() : value(0);
      if (random(2)) body.stream = value(0);
      const json = JSON.stringify(body, null, random(2) ? 1 : undefined);
      const parsed = JSON.parse(json) as { model?: unknown; stream?: unknown };
      expect(read(json), json).toEqual({ model: parsed.model, stream: parsed.stream });
      if (typeof parsed.model === 'string' && /["\\]/.test(parsed.model)) trickyModels++;
    }
    // The bodies did exercise what matters: models with quotes and backslashes in them.
    expect(trickyModels).toBeGreaterThan(20);
  });

  it('takes the last of duplicate keys, as JSON.parse does', () => {
    expect(read('{"model":"a","stream":false,"model":"b","stream":true}')).toEqual({ model: 'b', stream: true });
  });

  it.each([
    ['an array', '[{"model":"m"}]'],
    ['a string', '"model"'],
    ['an unclosed object', '{"model":"m"'],
    ['an unclosed string', '{"model":"m}'],
    ['trailing garbage', '{"model":"m"} x'],
    ['a missing colon', '{"model" "m"}'],
    ['a trailing comma', '{"model":"m",}'],
    ['an escaped key', '{"mod\\u0065l":"m"}'],
    ['an empty body', ''],
  ])('gives up on %s, so that JSON.parse decides', (_what, text) => {
    expect(read(text)).toBeNull();
  });

  it('reads an answer’s usage object whole', () => {
    const answer = { id: 'msg_1', content: [{ type: 'text', text: '"usage": {}' }], usage: { input_tokens: 3 } };
    expect(readTopLevelFields(Buffer.from(JSON.stringify(answer)), ['usage', 'model'])).toEqual({
      usage: { input_tokens: 3 },
    });
  });

  it('reports absent fields as undefined', () => {
    expect(read('{}')).toEqual({ model: undefined, stream: undefined });
    expect(read(' { "max_tokens" : 5 } ')).toEqual({ model: undefined, stream: undefined });
  });
});
