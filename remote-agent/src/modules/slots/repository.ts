import type { Db } from '../../db/database.js';
import type { SlotCommand, SlotEvent, TerminalBackend } from '../../contract/index.js';

export interface SlotRow {
  id: string;
  name: string;
  command: SlotCommand;
  argv: string[];
  env: Record<string, string>;
  workDir: string;
  /** The agent made the work dir (under the data dir) and may remove it. */
  workDirManaged: boolean;
  homeDir: string;
  memoryLimitMb: number | null;
  terminal: TerminalBackend;
  desiredState: 'running' | 'stopped';
  failedReason: string | null;
  failedAt: string | null;
  cols: number;
  rows: number;
  restarts: number;
  /** PM2's restart counter already turned into events (PM2 counts from 0 again when a process is re-registered). */
  supervisorRestartsSeen: number;
  lastActivityAt: string | null;
  ownerId: string | null;
  /** The key a metered slot uses for the gateway (its secret lives in SlotPaths.meteredKeyFile). */
  meteredKeyId: string | null;
  createdAt: string;
  updatedAt: string;
}

interface RawSlot {
  id: string;
  name: string;
  command_json: string;
  argv_json: string;
  env_json: string;
  work_dir: string;
  work_dir_managed: number;
  home_dir: string;
  memory_limit_mb: number | null;
  terminal: TerminalBackend;
  desired_state: 'running' | 'stopped';
  failed_reason: string | null;
  failed_at: string | null;
  cols: number;
  rows: number;
  restarts: number;
  supervisor_restarts_seen: number;
  last_activity_at: string | null;
  owner_id: string | null;
  metered_key_id: string | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS: Record<keyof SlotRow, string> = {
  id: 'id',
  name: 'name',
  command: 'command_json',
  argv: 'argv_json',
  env: 'env_json',
  workDir: 'work_dir',
  workDirManaged: 'work_dir_managed',
  homeDir: 'home_dir',
  memoryLimitMb: 'memory_limit_mb',
  terminal: 'terminal',
  desiredState: 'desired_state',
  failedReason: 'failed_reason',
  failedAt: 'failed_at',
  cols: 'cols',
  rows: 'rows',
  restarts: 'restarts',
  supervisorRestartsSeen: 'supervisor_restarts_seen',
  lastActivityAt: 'last_activity_at',
  ownerId: 'owner_id',
  meteredKeyId: 'metered_key_id',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
};

function fromRaw(raw: RawSlot): SlotRow {
  return {
    id: raw.id,
    name: raw.name,
    command: JSON.parse(raw.command_json) as SlotCommand,
    argv: JSON.parse(raw.argv_json) as string[],
    env: JSON.parse(raw.env_json) as Record<string, string>,
    workDir: raw.work_dir,
    workDirManaged: raw.work_dir_managed === 1,
    homeDir: raw.home_dir,
    memoryLimitMb: raw.memory_limit_mb,
    terminal: raw.terminal,
    desiredState: raw.desired_state,
    failedReason: raw.failed_reason,
    failedAt: raw.failed_at,
    cols: raw.cols,
    rows: raw.rows,
    restarts: raw.restarts,
    supervisorRestartsSeen: raw.supervisor_restarts_seen,
    lastActivityAt: raw.last_activity_at,
    ownerId: raw.owner_id,
    meteredKeyId: raw.metered_key_id,
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
  };
}

function toColumnValue(key: keyof SlotRow, value: unknown): unknown {
  if (key === 'command' || key === 'argv' || key === 'env') return JSON.stringify(value);
  if (key === 'workDirManaged') return value ? 1 : 0;
  return value;
}

export class SlotNameTakenError extends Error {}

export class SlotRepository {
  private readonly statements;

  constructor(private readonly db: Db) {
    this.statements = {
      get: db.prepare<[string], RawSlot>('SELECT * FROM slots WHERE id = ?'),
      getByName: db.prepare<[string], RawSlot>('SELECT * FROM slots WHERE name = ?'),
      list: db.prepare<[], RawSlot>('SELECT * FROM slots ORDER BY created_at, id'),
      delete: db.prepare<[string]>('DELETE FROM slots WHERE id = ?'),
      addEvent: db.prepare<[string, string, string, string]>(
        'INSERT INTO slot_events (slot_id, at, kind, message) VALUES (?, ?, ?, ?)',
      ),
      events: db.prepare<
        [string, number],
        { id: number; slot_id: string; at: string; kind: SlotEvent['kind']; message: string }
      >('SELECT id, slot_id, at, kind, message FROM slot_events WHERE slot_id = ? ORDER BY id DESC LIMIT ?'),
      countEventsSince: db.prepare<[string, string, string], { count: number }>(
        'SELECT count(*) AS count FROM slot_events WHERE slot_id = ? AND kind = ? AND at >= ?',
      ),
      latestLaunchExcept: db.prepare<[string, string, string, string, string], { at: string; message: string }>(
        `SELECT at, message FROM slot_events
         WHERE slot_id = ? AND kind IN ('started', 'restarted') AND message NOT IN (?, ?) AND substr(message, 1, length(?)) <> ?
         ORDER BY id DESC LIMIT 1`,
      ),
      latestEvent: db.prepare<[string, string], { at: string; message: string }>(
        'SELECT at, message FROM slot_events WHERE slot_id = ? AND kind = ? ORDER BY id DESC LIMIT 1',
      ),
    };
  }

  insert(row: SlotRow): void {
    const keys = Object.keys(COLUMNS) as Array<keyof SlotRow>;
    const sql = `INSERT INTO slots (${keys.map((k) => COLUMNS[k]).join(', ')}) VALUES (${keys.map(() => '?').join(', ')})`;
    try {
      this.db.prepare(sql).run(...keys.map((k) => toColumnValue(k, row[k])));
    } catch (error) {
      if (
        (error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' &&
        /slots\.name/.test((error as Error).message)
      ) {
        throw new SlotNameTakenError(row.name);
      }
      throw error;
    }
  }

  get(id: string): SlotRow | null {
    const raw = this.statements.get.get(id);
    return raw ? fromRaw(raw) : null;
  }

  getByName(name: string): SlotRow | null {
    const raw = this.statements.getByName.get(name);
    return raw ? fromRaw(raw) : null;
  }

  list(): SlotRow[] {
    return this.statements.list.all().map(fromRaw);
  }

  /** Updates the given fields (and updated_at); returns the row as stored. */
  update(
    id: string,
    patch: Partial<Omit<SlotRow, 'id' | 'createdAt' | 'updatedAt'>>,
    now = new Date().toISOString(),
  ): SlotRow | null {
    const keys = (Object.keys(patch) as Array<keyof SlotRow>).filter(
      (k) => patch[k as keyof typeof patch] !== undefined,
    );
    const assignments = [...keys.map((k) => `${COLUMNS[k]} = ?`), 'updated_at = ?'];
    this.db
      .prepare(`UPDATE slots SET ${assignments.join(', ')} WHERE id = ?`)
      .run(...keys.map((k) => toColumnValue(k, patch[k as keyof typeof patch])), now, id);
    return this.get(id);
  }

  delete(id: string): void {
    this.statements.delete.run(id);
  }

  addEvent(slotId: string, kind: SlotEvent['kind'], message: string, at = new Date().toISOString()): void {
    this.statements.addEvent.run(slotId, at, kind, message);
  }

  events(slotId: string, limit: number): SlotEvent[] {
    return this.statements.events
      .all(slotId, limit)
      .map((e) => ({ id: e.id, slotId: e.slot_id, at: e.at, kind: e.kind, message: e.message }));
  }

  countEventsSince(slotId: string, kind: SlotEvent['kind'], since: string): number {
    return this.statements.countEventsSince.get(slotId, kind, since)?.count ?? 0;
  }

  /**
   * The newest `started` or `restarted` event whose message is none of `messages` and does not begin with `prefix`
   * (the agent's own launches), or null.
   */
  latestLaunchExcept(
    slotId: string,
    messages: [string, string],
    prefix: string,
  ): { at: string; message: string } | null {
    return this.statements.latestLaunchExcept.get(slotId, messages[0], messages[1], prefix, prefix) ?? null;
  }

  /** The newest event of one kind, or null. */
  latestEvent(slotId: string, kind: SlotEvent['kind']): { at: string; message: string } | null {
    return this.statements.latestEvent.get(slotId, kind) ?? null;
  }
}
