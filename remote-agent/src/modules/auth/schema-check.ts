import type { authOptions } from './better-auth.js';

/**
 * What better-auth's own migration planner would still create or add for these options (nothing, when schema 5's
 * auth_* tables are what this better-auth expects). Loaded on demand: the agent never runs better-auth's migrations.
 */
export async function pendingAuthSchemaChanges(
  options: ReturnType<typeof authOptions>,
): Promise<{ toBeCreated: string[]; toBeAdded: Array<{ table: string; fields: string[] }> }> {
  const { getMigrations } = await import('better-auth/db/migration');
  const plan = await getMigrations(options);
  return {
    toBeCreated: plan.toBeCreated.map((t) => t.table),
    toBeAdded: plan.toBeAdded.map((t) => ({ table: t.table, fields: Object.keys(t.fields) })),
  };
}
