import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { WebSocket } from 'ws';
import { ConfigError, loadConfig, type AgentConfig } from './config.js';
import {
  adminApi,
  API_PREFIX,
  ClientCommand,
  ServerCommand,
  TTYD_SUBPROTOCOL,
  type Slot,
  type TerminalTicket,
} from './contract/index.js';
import { migrateTo, openDatabase, SchemaTooNewError, schemaVersion, type Db } from './db/database.js';
import { LATEST_SCHEMA_VERSION, migrations } from './db/migrations.js';
import { ensureAdminToken, rotateAdminToken } from './http/admin-token.js';
import { databasePath, readAgentState, runAgent, StartupError } from './server.js';
import { createAgentLogger } from './logger.js';
import { Pm2Supervisor } from './supervisor/pm2.js';
import { endSessions, slotSessions } from './supervisor/sessions.js';
import { slotFoldersOf } from './modules/slots/slot-folders.js';
import { AGENT_VERSION } from './version.js';
import { SetupError, setupHost } from './setup-host.js';
import { RELEASE_USAGE, ReleaseUsageError, runRelease } from './release/index.js';
import { BackupCliError, backupCommand, restoreCommand } from './modules/backups/cli.js';

/** How far V8 lets the agent's heap grow past what it kept alive before the next full collection, in %. */
const HEAP_GROWING_PERCENT = 50;

const USAGE = `slotdeck-agent ${AGENT_VERSION}: Slotdeck's host agent (terminal slots under PM2, admin API on loopback)

Usage: slotdeck-agent [command] [options]

Commands:
  serve                 Run the agent (the default)
  setup-host [--user NAME] [--data-dir DIR]
                        As root, once: the agent's own account (default slotdeck), its data dir, and the
                        privileged helper that runs each slot as an account of its own
  token [--rotate]      Print the admin token (--rotate: replace it; a running agent switches within a second)
  attach <slot>         Open a slot's terminal here (by name or id; --read-only to watch). Detach: Ctrl-]
                        (exit 0); exit 1 when the agent ends the connection
  health                Ask the running agent how it is (exit 0: well; 1: degraded; 2: not running
                        or not answering)
  migrate status|up|down [--to N] [--force]
                        Show or move the database schema (the agent migrates up by itself on start); down
                        refuses to drop rows unless --force
  backup [--out FILE] [--public-key F]
                        Back up now (online; sealed to the panel's key, signed by this host), verified
  restore <file> --key-file F [--signer-key F] [--skip-secrets]
                        Restore a backup (stops a running agent; it migrates and reconciles at its next start)
  down                  Stop every slot process and the agent's PM2 daemon (slots start again with the agent)
${RELEASE_USAGE}
Options:
  --data-dir <dir>      Data directory (SLOTDECK_AGENT_DATA_DIR; default ~/.local/share/slotdeck-agent)
  --config <file>       JSON config file (SLOTDECK_AGENT_CONFIG; default <data dir>/agent.json)
  --port <n>            Admin listener port on 127.0.0.1 (SLOTDECK_AGENT_ADMIN_PORT; default 7420)
  -h, --help            This text
  -v, --version         The version
`;

class CliError extends Error {}

/** How long the CLI waits for the agent's answer: a stopped or wedged agent must not hang scripts that ask it. */
const ANSWER_TIMEOUT_MS = 10_000;

/** fetch, with a sentence instead of a stack trace when the agent does not answer. */
async function askAgent(url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS) });
  } catch (error) {
    const why =
      (error as Error).name === 'TimeoutError'
        ? `did not answer within ${ANSWER_TIMEOUT_MS / 1000} s`
        : `did not answer (${((error as { cause?: Error }).cause ?? (error as Error)).message})`;
    throw new CliError(
      `The agent at ${new URL(url).origin} ${why}. Check it with ps or its log; restart it with slotdeck-agent serve.`,
      { cause: error },
    );
  }
}

function config(values: {
  'data-dir'?: string | undefined;
  config?: string | undefined;
  port?: string | undefined;
}): AgentConfig {
  return loadConfig({
    ...(values.config ? { configFile: values.config } : {}),
    overrides: {
      dataDir: values['data-dir'],
      'admin.port':
        values.port === undefined ? undefined : /^\d+$/.test(values.port) ? Number(values.port) : values.port,
    },
  });
}

async function call<T>(cfg: AgentConfig, method: string, path: string, body?: unknown): Promise<T> {
  const state = readAgentState(cfg.dataDir);
  if (!state)
    throw new CliError(`No agent is running with the data dir ${cfg.dataDir}. Start it with: slotdeck-agent serve`);
  const response = await askAgent(`${state.adminUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ensureAdminToken(cfg.dataDir)}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const payload = (await response.json()) as T & { error?: { message: string } };
  if (!response.ok) throw new CliError(payload.error?.message ?? `HTTP ${response.status}`);
  return payload;
}

/** Attaches this terminal to a slot's. Resolves 0 when the admin detached, 1 when the agent ended the connection. */
async function attach(cfg: AgentConfig, target: string, readOnly: boolean): Promise<number> {
  const { slots } = await call<{ slots: Slot[] }>(cfg, 'GET', adminApi.listSlots.path);
  const slot = slots.find((s) => s.id === target || s.name === target);
  if (!slot) throw new CliError(`No slot named "${target}". Slots: ${slots.map((s) => s.name).join(', ') || '(none)'}`);
  const ticket = await call<TerminalTicket>(cfg, 'POST', `${API_PREFIX}/slots/${slot.id}/tickets`, {
    mode: readOnly ? 'read-only' : 'writable',
  });
  const state = readAgentState(cfg.dataDir)!;
  const socket = new WebSocket(`${state.adminUrl.replace(/^http/, 'ws')}${ticket.path}`, [TTYD_SUBPROTOCOL]);
  const size = (): { columns: number; rows: number } => ({
    columns: process.stdout.columns || 80,
    rows: process.stdout.rows || 24,
  });
  let detaching = false;
  return new Promise<number>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('open', () => {
      socket.send(Buffer.from(JSON.stringify({ AuthToken: '', ...size() })));
      if (process.stdin.isTTY) process.stdin.setRawMode(true);
      process.stdin.resume();
      process.stderr.write(
        `\x1b[2m[attached to ${slot.name}${readOnly ? ', read-only' : ''}; detach with Ctrl-]]\x1b[0m\r\n`,
      );
      process.stdin.on('data', (data: Buffer) => {
        if (data.includes(0x1d)) {
          detaching = true;
          socket.close(1000, 'detached');
          return;
        }
        socket.send(Buffer.concat([Buffer.from(ClientCommand.INPUT), data]));
      });
      process.stdout.on('resize', () => socket.send(Buffer.from(ClientCommand.RESIZE + JSON.stringify(size()))));
    });
    socket.on('message', (data: Buffer) => {
      if (String.fromCharCode(data[0]!) === ServerCommand.OUTPUT) process.stdout.write(data.subarray(1));
    });
    socket.once('close', (code, reason) => {
      if (process.stdin.isTTY) process.stdin.setRawMode(false);
      process.stdin.pause();
      // Anything but the admin's own Ctrl-] (the agent stopping, the slot ending, a lost connection) says why and
      // exits 1, so a script around attach can tell.
      const why = reason.toString() || (code === 1006 ? 'the connection to the agent was lost' : `code ${code}`);
      process.stderr.write(`\r\n\x1b[2m[detached${detaching ? '' : `: ${why}`}]\x1b[0m\r\n`);
      resolve(detaching ? 0 : 1);
    });
  });
}

/**
 * What moving the schema down to `target` would delete: rows of the tables the down migrations drop, and values in
 * the columns they drop. Read from each migration's own SQL, so a new migration needs nothing added here.
 */
function dataLostGoingDown(db: Db, target: number): string[] {
  const count = (sql: string): number => {
    try {
      return (db.prepare(sql).pluck().get() as number | undefined) ?? 0;
    } catch {
      return 0; // the table is not there (yet): nothing to lose
    }
  };
  const rows = (n: number): string => `${n} row${n === 1 ? '' : 's'}`;
  const lost: string[] = [];
  const current = schemaVersion(db);
  for (const migration of migrations.filter((m) => m.version > target && m.version <= current).reverse()) {
    for (const [, table, column] of migration.down.matchAll(
      /ALTER\s+TABLE\s+["`]?(\w+)["`]?\s+DROP\s+(?:COLUMN\s+)?["`]?(\w+)/gi,
    )) {
      const n = count(`SELECT COUNT(*) FROM "${table}" WHERE "${column}" IS NOT NULL`);
      if (n > 0) lost.push(`${table}.${column} (${rows(n)})`);
    }
    for (const [, table] of migration.down.matchAll(/DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?["`]?(\w+)/gi)) {
      const n = count(`SELECT COUNT(*) FROM "${table}"`);
      if (n > 0) lost.push(`${table} (${rows(n)})`);
    }
  }
  return lost;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      config: { type: 'string' },
      port: { type: 'string' },
      rotate: { type: 'boolean' },
      'read-only': { type: 'boolean' },
      to: { type: 'string' },
      force: { type: 'boolean' },
      user: { type: 'string' },
      'timeout-s': { type: 'string' },
      'delete-data': { type: 'boolean' },
      account: { type: 'string' },
      crontab: { type: 'boolean' },
      out: { type: 'string' },
      'key-file': { type: 'string' },
      'skip-secrets': { type: 'boolean' },
      'public-key': { type: 'string' },
      'signer-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return 0;
  }
  const [command = 'serve', ...rest] = positionals;
  switch (command) {
    case 'serve': {
      // Under a steady request rate V8 lets a long-running process's heap grow to about four times what it keeps
      // alive before collecting: R7 (the reliability bench) saw the agent's heap go from 90 to 200 MB in a minute,
      // mostly garbage. A growing factor of 1.5 keeps it near what is live, for a little more GC work. The flag is read
      // at every collection, so setting it before the agent starts is enough.
      setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
      const cfg = config(values);
      // The agent's own log file, rotated (logger.ts); stdout gets the same lines unless log.stdout is off.
      await runAgent(cfg, { logger: createAgentLogger(cfg).logger });
      return -1; // keep running until a signal
    }
    case 'setup-host': {
      try {
        const result = setupHost({
          user: values.user ?? 'slotdeck',
          dataDir: values['data-dir'],
          say: (line) => process.stdout.write(`${line}\n`),
        });
        process.stdout.write(
          `Done. Start the agent as ${result.user} (each slot then runs as an account of its own):\n` +
            `  runuser -u ${result.user} -- ${process.argv[1] ?? 'slotdeck-agent'} serve --data-dir ${result.dataDir}\n`,
        );
        return 0;
      } catch (error) {
        if (error instanceof SetupError) throw new CliError(error.message);
        throw error;
      }
    }
    case 'token': {
      const cfg = config(values);
      process.stdout.write(`${values.rotate ? rotateAdminToken(cfg.dataDir) : ensureAdminToken(cfg.dataDir)}\n`);
      return 0;
    }
    case 'attach': {
      if (!rest[0]) throw new CliError('Name the slot: slotdeck-agent attach <slot>');
      return attach(config(values), rest[0], values['read-only'] === true);
    }
    case 'health': {
      const cfg = config(values);
      const state = readAgentState(cfg.dataDir);
      if (!state)
        throw new CliError(`No agent is running with the data dir ${cfg.dataDir}. Start it with: slotdeck-agent serve`);
      const response = await askAgent(`${state.adminUrl}/health`);
      const health = (await response.json()) as { status?: string };
      process.stdout.write(`${JSON.stringify(health, null, 2)}\n`);
      // "degraded" answers 200 too; a script or monitor checking the exit code must see it.
      return response.ok && health.status === 'ok' ? 0 : 1;
    }
    case 'migrate': {
      const cfg = config(values);
      let db: Db;
      try {
        db = openDatabase(databasePath(cfg.dataDir), { migrate: false });
      } catch (error) {
        if (error instanceof SchemaTooNewError) throw new CliError(error.message);
        throw error;
      }
      try {
        const action = rest[0] ?? 'status';
        if (action === 'status') {
          process.stdout.write(`schema version ${schemaVersion(db)} of ${LATEST_SCHEMA_VERSION}\n`);
          for (const m of migrations)
            process.stdout.write(`  ${m.version <= schemaVersion(db) ? '[x]' : '[ ]'} ${m.version} ${m.name}\n`);
          return 0;
        }
        if (action !== 'up' && action !== 'down')
          throw new CliError('Use: slotdeck-agent migrate status|up|down [--to N]');
        if (readAgentState(cfg.dataDir)) throw new CliError('Stop the agent before migrating its database by hand.');
        const target =
          values.to !== undefined
            ? Number(values.to)
            : action === 'up'
              ? LATEST_SCHEMA_VERSION
              : Math.max(0, schemaVersion(db) - 1);
        if (!Number.isInteger(target) || target < 0 || target > LATEST_SCHEMA_VERSION)
          throw new CliError(`--to must be 0-${LATEST_SCHEMA_VERSION}`);
        if (action === 'down' && values.force !== true) {
          const lost = dataLostGoingDown(db, target);
          if (lost.length > 0)
            throw new CliError(
              `Moving the schema down to ${target} would delete ${lost.join(', ')}. Nothing was changed. ` +
                `Copy ${databasePath(cfg.dataDir)} somewhere safe first, then run again with --force.`,
            );
        }
        for (const step of migrateTo(db, target))
          process.stdout.write(`${step.direction} ${step.version} ${step.name}\n`);
        process.stdout.write(`schema version ${schemaVersion(db)}\n`);
        return 0;
      } finally {
        db.close();
      }
    }
    case 'down': {
      const cfg = config(values);
      if (readAgentState(cfg.dataDir))
        throw new CliError('Stop the agent first (its slots would be started again at once).');
      const supervisor = new Pm2Supervisor(cfg.pm2Home);
      const daemon = supervisor.daemonPid();
      const folders = slotFoldersOf(cfg.dataDir, cfg.runDir);
      const sessions = slotSessions(folders);
      if (daemon !== null) {
        await supervisor.connect();
        await supervisor.shutdownDaemon();
      }
      // Whatever PM2 did not end: every session of a dead daemon (ppid 1), and what a session forked while PM2
      // ended it (a login shell's clear_console).
      for (const session of slotSessions(folders)) sessions.add(session);
      const ended = await endSessions(sessions, 1000);
      const slots = `${ended} slot process${ended === 1 ? '' : 'es'} ended`;
      process.stdout.write(
        daemon !== null
          ? `stopped every slot and the PM2 daemon (pid ${daemon}); ${slots} after it\n`
          : `the PM2 daemon was not running; ${slots} that it had left running\n`,
      );
      return 0;
    }
    case 'backup':
      return backupCommand(config(values), values.out, values['public-key']);
    case 'restore': {
      if (!rest[0]) throw new CliError('Name the backup file: slotdeck-agent restore <file> [--key-file F]');
      return restoreCommand(config(values), rest[0], {
        keyFile: values['key-file'],
        signerKey: values['signer-key'],
        skipSecrets: values['skip-secrets'] === true,
      });
    }
    case 'release': {
      try {
        return await runRelease(rest, values, () => config(values));
      } catch (error) {
        if (error instanceof ReleaseUsageError) throw new CliError(error.message);
        throw error;
      }
    }
    default:
      throw new CliError(`Unknown command "${command}".\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    if (
      error instanceof ConfigError ||
      error instanceof CliError ||
      error instanceof StartupError ||
      error instanceof BackupCliError ||
      error instanceof SchemaTooNewError
    ) {
      process.stderr.write(`slotdeck-agent: ${error.message}\n`);
      process.exit(2);
    }
    if ((error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`slotdeck-agent: ${(error as Error).message}\n\n${USAGE}`);
      process.exit(2);
    }
    process.stderr.write(`slotdeck-agent: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
