/**
 * R9: `slotdeck-agent backup` while the gateway writes usage rows, then `slotdeck-agent restore` of that file onto a
 * freshly started agent (another data dir: a new host). The restored database passes integrity_check with the row
 * counts the backup pinned, and a key created before the backup authenticates on the new host.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Pool } from 'undici';
import { inspectBackup } from '../../../remote-agent/src/modules/backups/bundle.js';
import { rawPublicKey } from '../../../remote-agent/src/modules/backups/crypto.js';
import { FAKE_UPSTREAM_KEY } from '../fixtures/fake-anthropic.js';
import { AgentProcess, runAgentCommand } from '../helpers/agent.js';
import { gatewayUser, JSON_BODY, send } from './gateway-client.js';

export interface BackupRestoreResult {
  /** From `slotdeck-agent restore` on the new host until its agent answers again (stop, apply, start, migrate). */
  restoreS: number;
  backupS: number;
  /** Usage rows written while the backup ran. */
  rowsWrittenDuringBackup: number;
  integrity: string;
  /** Tables whose restored row count differs from the count the backup pinned. */
  countMismatches: string[];
  rowsRestored: number;
  /** The key created before the backup, sent to the new host's gateway: its status. */
  oldKeyStatus: number | null;
}

async function cli(dataDir: string, args: string[]): Promise<string> {
  const { code, out } = await runAgentCommand(dataDir, args);
  if (code !== 0) throw new Error(`slotdeck-agent ${args.join(' ')} exited with ${code}: ${out}`);
  return out;
}

export async function runBackupRestore(options: {
  upstreamUrl: string;
  /** Usage rows written before the backup. */
  rowsBefore: number;
  log?: (message: string) => void;
}): Promise<BackupRestoreResult> {
  const log = options.log ?? (() => undefined);
  const work = mkdtempSync(join(tmpdir(), 'sd-r9-'));
  const env = { SLOTDECK_AGENT_UPSTREAM_URL: options.upstreamUrl, SLOTDECK_AGENT_LOG_LEVEL: 'warn' };
  const old = await AgentProcess.start({ env });
  let fresh: AgentProcess | null = null;
  const pools: Pool[] = [];
  try {
    // As the panel does: its public key registered (backups are sealed to it), its private key and the host's
    // signing key in files for the CLI restore.
    const panelKey = generateKeyPairSync('x25519');
    await old.request('PUT', '/api/v1/backups/key', { publicKey: rawPublicKey(panelKey.publicKey).toString('base64') });
    const keyFile = join(work, 'panel-key.pem');
    writeFileSync(keyFile, panelKey.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const signerFile = join(work, 'signer.pub');
    writeFileSync(
      signerFile,
      (await old.request<{ publicKey: string }>('GET', '/api/v1/backups/signing-key')).body.publicKey,
    );
    const { secret } = await gatewayUser(old, 'r9-before-backup');
    const pool = new Pool(old.gatewayUrl, { connections: 8 });
    pools.push(pool);
    const load = async (count: number): Promise<number> => {
      let done = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (done < count) {
            done += 1;
            await send(pool, secret, JSON_BODY);
          }
        }),
      );
      return done;
    };
    await load(options.rowsBefore);
    log(`R9: ${options.rowsBefore} usage rows written; backup while the gateway writes more`);
    let writing = true;
    let duringBackup = 0;
    const writer = (async () => {
      while (writing) duringBackup += await load(8);
    })();
    const file = join(work, 'backup.tar');
    const backupStarted = performance.now();
    let backupS: number;
    try {
      await cli(old.dataDir, ['backup', '--out', file]);
      backupS = (performance.now() - backupStarted) / 1000;
    } finally {
      // Also when the backup fails: the writer would otherwise go on for ever.
      writing = false;
      await writer;
    }
    const { manifest } = await inspectBackup(file);

    fresh = await AgentProcess.start({ env });
    log('R9: restore onto a freshly started agent');
    const restoreStarted = performance.now();
    await cli(fresh.dataDir, ['restore', file, '--key-file', keyFile, '--signer-key', signerFile, '--skip-secrets']);
    // Before the agent starts on it (and writes its own rows): the database exactly as restored.
    const db = new Database(join(fresh.dataDir, 'agent.db'), { readonly: true, fileMustExist: true });
    let integrity: string;
    const countMismatches: string[] = [];
    let rowsRestored = 0;
    try {
      integrity = db.pragma('integrity_check', { simple: true }) as string;
      for (const [table, count] of Object.entries(manifest.counts)) {
        const restored = db.prepare(`SELECT COUNT(*) FROM "${table}"`).pluck().get() as number;
        rowsRestored += restored;
        if (restored !== count) countMismatches.push(`${table}: ${restored} restored, ${count} in the backup`);
      }
    } finally {
      db.close();
    }
    await fresh.launch();
    const restoreS = (performance.now() - restoreStarted) / 1000;

    // The upstream key is a secret the backup sealed to the panel's key (left out here): the admin sets it again.
    await fresh.request('PUT', '/api/v1/gateway/upstream-key', { apiKey: FAKE_UPSTREAM_KEY });
    const freshPool = new Pool(fresh.gatewayUrl, { connections: 1 });
    pools.push(freshPool);
    const answer = await send(freshPool, secret, JSON_BODY);
    return {
      restoreS,
      backupS,
      rowsWrittenDuringBackup: duringBackup,
      integrity,
      countMismatches,
      rowsRestored,
      oldKeyStatus: answer.status,
    };
  } finally {
    await Promise.all(pools.map((pool) => pool.close()));
    await fresh?.destroy();
    await old.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}
