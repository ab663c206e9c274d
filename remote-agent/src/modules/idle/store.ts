import type { IdlePolicy } from '../../contract/index.js';
import type { Db } from '../../db/database.js';

export const DEFAULT_IDLE_POLICY: IdlePolicy = { enabled: false, minutes: 60 };
/** Runs of the stop command kept in the database (the status shows the newest). */
const STOPS_KEPT = 20;

export interface StoredStop {
  id: number;
  at: string;
  command: string;
  finishedAt: string | null;
  exitCode: number | null;
  output: string;
}

interface StopRow {
  id: number;
  at: string;
  command: string;
  finished_at: string | null;
  exit_code: number | null;
  output: string;
}

/** The idle policy and the record of stop runs, in the agent's database (migration 4). */
export class IdleStore {
  private readonly readPolicy;
  private readonly writePolicy;
  private readonly insertStop;
  private readonly finishStop;
  private readonly pruneStops;
  private readonly newestStop;

  constructor(db: Db) {
    this.readPolicy = db.prepare<[], { enabled: number; minutes: number }>(
      'SELECT enabled, minutes FROM idle_policy WHERE id = 1',
    );
    this.writePolicy = db.prepare<[number, number, string]>(
      `INSERT INTO idle_policy (id, enabled, minutes, updated_at) VALUES (1, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, minutes = excluded.minutes,
         updated_at = excluded.updated_at`,
    );
    this.insertStop = db.prepare<[string, string]>('INSERT INTO idle_stops (at, command) VALUES (?, ?)');
    this.finishStop = db.prepare<[string, number | null, string, number]>(
      'UPDATE idle_stops SET finished_at = ?, exit_code = ?, output = ? WHERE id = ?',
    );
    this.pruneStops = db.prepare<[number]>(
      'DELETE FROM idle_stops WHERE id NOT IN (SELECT id FROM idle_stops ORDER BY id DESC LIMIT ?)',
    );
    this.newestStop = db.prepare<[], StopRow>('SELECT * FROM idle_stops ORDER BY id DESC LIMIT 1');
  }

  policy(): IdlePolicy {
    const row = this.readPolicy.get();
    return row ? { enabled: row.enabled === 1, minutes: row.minutes } : { ...DEFAULT_IDLE_POLICY };
  }

  setPolicy(policy: IdlePolicy, at: string): void {
    this.writePolicy.run(policy.enabled ? 1 : 0, policy.minutes, at);
  }

  /** Written before the command runs: if the machine goes down first, the record still says when it started. */
  startStop(at: string, command: string): number {
    const id = Number(this.insertStop.run(at, command).lastInsertRowid);
    this.pruneStops.run(STOPS_KEPT);
    return id;
  }

  finishStopRun(id: number, at: string, exitCode: number | null, output: string): void {
    this.finishStop.run(at, exitCode, output, id);
  }

  lastStop(): StoredStop | null {
    const row = this.newestStop.get();
    if (!row) return null;
    return {
      id: row.id,
      at: row.at,
      command: row.command,
      finishedAt: row.finished_at,
      exitCode: row.exit_code,
      output: row.output,
    };
  }
}
