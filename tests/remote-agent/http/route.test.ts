import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SlotCommand, SlotEnv } from '../../../remote-agent/src/contract/slots.js';
import { toIssues } from '../../../remote-agent/src/http/route.js';

/** The issues a request part gets for `value`, as the agent answers them in a 400 VALIDATION_FAILED. */
function issuesFor(where: string, schema: z.ZodType, value: unknown): Array<{ path: string; message: string }> {
  const result = schema.safeParse(value);
  if (result.success) throw new Error(`${JSON.stringify(value)} was accepted`);
  return toIssues(where, result.error);
}

const Body = z.strictObject({
  name: z.string().min(1, { message: 'must not be empty' }),
  size: z.strictObject({ cols: z.int().min(2), rows: z.int().min(1) }).optional(),
});

describe('toIssues', () => {
  it('names an unknown field and asks to check its spelling', () => {
    expect(issuesFor('body', Body, { name: 'ok', nmae: 'typo' })).toEqual([
      { path: 'body', message: 'unknown field "nmae"; check the spelling' },
    ]);
  });

  it('names every unknown field of a nested object at that object', () => {
    expect(issuesFor('body', Body, { name: 'ok', size: { cols: 80, rows: 24, colour: 1, font: 2 } })).toEqual([
      { path: 'body.size', message: 'unknown fields "colour", "font"; check the spelling' },
    ]);
  });

  it('says a missing field is required', () => {
    expect(issuesFor('body', Body, {})).toEqual([{ path: 'body.name', message: 'is required' }]);
    expect(issuesFor('body', Body, { name: 'ok', size: { cols: 80 } })).toEqual([
      { path: 'body.size.rows', message: 'is required' },
    ]);
  });

  it('prefixes paths with where the value was: body, query or params', () => {
    const query = z.strictObject({ limit: z.coerce.number().int().min(1) });
    const [fromQuery] = issuesFor('query', query, { limit: '0' });
    expect(fromQuery?.path).toBe('query.limit');
    const params = z.strictObject({ id: z.string().regex(/^[a-z0-9]{10}$/, { message: 'must be a slot id' }) });
    expect(issuesFor('params', params, { id: 'NOPE' })).toEqual([{ path: 'params.id', message: 'must be a slot id' }]);
  });

  it("keeps the schema's own message for a value that is present but invalid", () => {
    expect(issuesFor('body', Body, { name: '' })).toEqual([{ path: 'body.name', message: 'must not be empty' }]);
  });

  it('lists every problem of one request', () => {
    const issues = issuesFor('body', Body, { size: { cols: 1, rows: 24 }, extra: true });
    expect(issues.map((issue) => issue.path).sort()).toEqual(['body', 'body.name', 'body.size.cols']);
  });

  it("addresses the agent's slot schemas by field: env variables and command presets", () => {
    expect(issuesFor('body.env', SlotEnv, { HOME: '/tmp' })).toEqual([
      { path: 'body.env.HOME', message: 'HOME is set by the agent for every slot; remove it from env' },
    ]);
    expect(issuesFor('body.env', SlotEnv, { '1BAD': 'x' }).map((issue) => issue.path)).toEqual(['body.env.1BAD']);
    expect(issuesFor('body.command', SlotCommand, { preset: 'custom' })).toEqual([
      { path: 'body.command.command', message: 'is required' },
    ]);
  });

  it('does not call a field that is present with the wrong type "required"', () => {
    // A client that sends {"name": 5} has sent the field: it needs to hear that a string is expected.
    const [issue] = issuesFor('body', Body, { name: 5 });
    expect(issue?.path).toBe('body.name');
    expect(issue?.message).not.toBe('is required');
    expect(issue?.message).toMatch(/string/);
  });
});
