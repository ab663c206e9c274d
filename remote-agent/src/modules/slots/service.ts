import {
  closeSync,
  cpSync,
  existsSync,
  fchmodSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  AgentErrorCode,
  API_PREFIX,
  type CreateSlotBody,
  type Slot,
  type SlotEvent,
  type TerminalMode,
  type TerminalTicket,
  type UpdateSlotBody,
} from '../../contract/index.js';
import type { AgentConfig } from '../../config.js';
import { AppError } from '../../errors.js';
import type { ProcessSupervisor, SupervisedProcess } from '../../supervisor/supervisor.js';
import { findExecutable } from '../../util/executables.js';
import { randomId } from '../../util/ids.js';
import { KeyedMutex } from '../../util/keyed-mutex.js';
import { readProcessTable, TreeSampler, childrenOf, type TreeUsage } from '../../util/procfs.js';
import type { TerminalBackend } from '../terminal/backend.js';
import type { TicketStore } from '../terminal/tickets.js';
import { loginShell, missingProgramMessage, resolveArgv } from './command.js';
import type { SlotAccounts } from './accounts.js';
import { readSmallFile, slotEnvironment, writeEnvFile } from './launch.js';
import { processName, slotIdOfProcess, type SlotPaths } from './paths.js';
import { SlotNameTakenError, type SlotRepository, type SlotRow } from './repository.js';

/** Appended to an `exited` event's message; the slot view shows the exit without it. */
const RESTARTING_SUFFIX = '; restarting it';
/**
 * After this long up since its last exit, a program counts as running again: a shell the admin left with `exit` is
 * not shown as restarting for the whole crash-loop window, while one that ends every few seconds never shows running.
 */
const STEADY_UPTIME_MS = 10_000;

type CreateSlotInput = Required<Omit<CreateSlotBody, 'workDir'>> & { workDir?: string | undefined };
type UpdateSlotInput = {
  [K in keyof UpdateSlotBody]?: Exclude<UpdateSlotBody[K], undefined> | undefined;
};

export interface HostTools {
  dtach: string | null;
  ttyd: string | null;
  tmux: string | null;
}

/** What metered slots need from the users and gateway modules; without it, slots cannot be metered. */
export interface SlotMetering {
  /** Throws SLOT_OWNER_NOT_FOUND when there is no such live user. */
  requireOwner(userId: string): void;
  issueSlotKey(ownerId: string, slotId: string, slotName: string): { keyId: string; prefix: string; secret: string };
  revokeSlotKeys(slotId: string): void;
  keyPrefix(keyId: string): string | null;
  /** Where programs on this host reach the gateway, or null when it does not listen. */
  gatewayUrl(): string | null;
}

export interface SlotServiceDeps {
  config: AgentConfig;
  repo: SlotRepository;
  supervisor: ProcessSupervisor;
  /** What holds each backend's slot terminals. */
  backends: Record<SlotRow['terminal'], TerminalBackend>;
  tickets: TicketStore;
  paths: SlotPaths;
  logger: Logger;
  metering?: SlotMetering;
  /** On a host set up for isolation: the slots' accounts, through the privileged helper. */
  accounts?: SlotAccounts;
}

const notFound = (id: string): AppError =>
  new AppError(
    AgentErrorCode.SLOT_NOT_FOUND,
    404,
    `No slot with id ${id}. List slots with GET ${API_PREFIX}/slots to find its id.`,
  );

/**
 * Slots: the registry in SQLite is the desired state, PM2 the actual one. API calls change both (one slot at a time,
 * under a per-slot lock); the reconciler brings PM2 back in line with the registry on start, on a timer and on
 * PM2's process events: missing processes are started, orphans removed, crash loops marked failed.
 */
export class SlotService {
  private readonly locks = new KeyedMutex();
  private readonly sampler = new TreeSampler();
  private readonly shell = loginShell();
  /** How many lines of each slot's exit record have been attributed to PM2 restarts already. */
  private readonly consumedExit = new Map<string, number>();
  private reconciling: Promise<void> | null = null;
  private reconcileQueued = false;
  private timer: NodeJS.Timeout | null = null;
  private eventTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private stopped = false;
  private started = false;

  constructor(private readonly deps: SlotServiceDeps) {}

  /** Connects to PM2, takes over running slots and starts the reconcile timer. */
  async start(): Promise<void> {
    await this.deps.supervisor.connect();
    this.unsubscribe = this.deps.supervisor.onProcessEvent((event) => {
      if (!slotIdOfProcess(event.name)) return;
      // PM2 reports exits and restarts at once; reconcile shortly after, coalescing bursts.
      if (this.eventTimer || this.stopped) return;
      this.eventTimer = setTimeout(() => {
        this.eventTimer = null;
        void this.reconcile();
      }, 50);
    });
    this.adoptIntoAccounts();
    this.started = true;
    await this.reconcile();
    this.timer = setInterval(() => void this.reconcile(), this.deps.config.reconcileIntervalMs);
    this.timer.unref();
  }

  /**
   * Slots made before this host was set up for isolation keep their homes in the agent's private data dir, which
   * their new account cannot enter: they move to fresh homes (and work dirs the agent made) under the account's.
   */
  private adoptIntoAccounts(): void {
    const { paths, repo, logger } = this.deps;
    if (!paths.isolation) return;
    for (const row of repo.list()) {
      const homeDir = paths.homeDir(row.id, row.ownerId);
      if (row.homeDir === homeDir) continue;
      const workDir = row.workDirManaged ? paths.defaultWorkDir(row.id, row.ownerId) : row.workDir;
      repo.update(row.id, { homeDir, workDir });
      repo.addEvent(row.id, 'isolated', `runs as ${paths.account(row.id, row.ownerId)}; new home ${homeDir}`);
      logger.info({ slotId: row.id, from: row.homeDir, to: homeDir }, 'slot moved to an account of its own');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.eventTimer) clearTimeout(this.eventTimer);
    this.unsubscribe?.();
    await this.reconciling?.catch(() => undefined);
  }

  // ---------------------------------------------------------------- API

  async list(
    filter: { state?: Slot['state'] | undefined; name?: string | undefined; ownerId?: string | undefined } = {},
  ): Promise<Slot[]> {
    // Rows are read after PM2 answered, so that they and the events the views read are of the same moment.
    const processes = await this.processes();
    const rows = (
      filter.name
        ? [this.deps.repo.getByName(filter.name)].filter((r): r is SlotRow => r !== null)
        : this.deps.repo.list()
    ).filter((row) => filter.ownerId === undefined || row.ownerId === filter.ownerId);
    const views = this.views(rows, processes);
    return filter.state ? views.filter((slot) => slot.state === filter.state) : views;
  }

  async get(id: string): Promise<Slot> {
    this.requireRow(id);
    const processes = await this.processes();
    return this.views([this.requireRow(id)], processes)[0]!;
  }

  events(id: string, limit: number): SlotEvent[] {
    this.requireRow(id);
    return this.deps.repo.events(id, limit);
  }

  async create(input: CreateSlotInput): Promise<Slot> {
    this.assertRunning();
    if (this.deps.repo.getByName(input.name)) throw nameTaken(input.name);
    const argv = resolveArgv(input.command, this.shell);
    const path = input.env.PATH ?? process.env.PATH;
    if (input.workDir !== undefined) checkWorkDir(input.workDir);
    if (!findExecutable(argv[0]!, path, input.workDir ?? process.cwd())) {
      throw new AppError(AgentErrorCode.SLOT_COMMAND_NOT_FOUND, 400, missingProgramMessage(input.command, argv[0]!));
    }
    this.assertBackend(input.terminal);
    this.checkOwner(input.ownerId, input.metered);

    const id = randomId();
    const { paths } = this.deps;
    const now = new Date().toISOString();
    const row: SlotRow = {
      id,
      name: input.name,
      command: input.command,
      argv,
      env: input.env,
      workDir: input.workDir ?? paths.defaultWorkDir(id, input.ownerId),
      workDirManaged: input.workDir === undefined,
      homeDir: paths.homeDir(id, input.ownerId),
      memoryLimitMb: input.memoryLimitMb,
      terminal: input.terminal,
      desiredState: input.start ? 'running' : 'stopped',
      failedReason: null,
      failedAt: null,
      cols: input.size.cols,
      rows: input.size.rows,
      restarts: 0,
      supervisorRestartsSeen: 0,
      lastActivityAt: null,
      ownerId: input.ownerId,
      meteredKeyId: null,
      createdAt: now,
      updatedAt: now,
    };
    this.prepareFolders(row);
    try {
      this.deps.repo.insert(row);
    } catch (error) {
      rmSync(paths.slotDir(id), { recursive: true, force: true });
      if (error instanceof SlotNameTakenError) throw nameTaken(input.name);
      throw error;
    }
    this.deps.repo.addEvent(id, 'created', `created (${describeCommand(row)})`);
    this.deps.logger.info({ slotId: id, name: row.name, argv, ownerId: row.ownerId }, 'slot created');
    if (input.metered && input.ownerId) {
      let issued: { keyId: string; prefix: string; secret: string };
      try {
        issued = this.deps.metering!.issueSlotKey(input.ownerId, id, row.name);
      } catch (error) {
        await this.locks.run(id, () => this.removeEverything(row, 'remove')).catch(() => undefined);
        throw error;
      }
      writeFileSync(paths.meteredKeyFile(id), issued.secret, { mode: 0o600 });
      Object.assign(row, this.deps.repo.update(id, { meteredKeyId: issued.keyId }));
      this.deps.repo.addEvent(id, 'metering', `metered through the gateway with key ${issued.prefix}…`);
    }
    if (input.start) {
      try {
        await this.locks.run(id, () => this.launch(row, 'created'));
      } catch (error) {
        // A slot that cannot start is not left half made: nothing of it remains.
        await this.locks.run(id, () => this.removeEverything(row, 'remove')).catch(() => undefined);
        throw error;
      }
    }
    return this.get(id);
  }

  async startSlot(id: string): Promise<Slot> {
    this.assertRunning();
    await this.locks.run(id, async () => {
      const row = this.requireRow(id);
      this.assertBackend(row.terminal);
      const updated = this.deps.repo.update(id, { desiredState: 'running', failedReason: null, failedAt: null })!;
      const current = await this.deps.supervisor.describe(processName(id));
      if (!current || !isLive(current))
        await this.launch(updated, row.failedReason ? 'started again after failing' : 'started');
    });
    return this.get(id);
  }

  async stopSlot(id: string): Promise<Slot> {
    this.assertRunning();
    await this.locks.run(id, async () => {
      const row = this.requireRow(id);
      this.deps.repo.update(id, { desiredState: 'stopped' });
      await this.halt(row);
      this.deps.repo.addEvent(id, 'stopped', 'stopped by the admin');
    });
    return this.get(id);
  }

  async restartSlot(id: string): Promise<Slot> {
    this.assertRunning();
    await this.locks.run(id, async () => {
      const row = this.requireRow(id);
      this.assertBackend(row.terminal);
      const updated = this.deps.repo.update(id, { desiredState: 'running', failedReason: null, failedAt: null })!;
      await this.relaunch(updated, 'restarted by the admin');
    });
    return this.get(id);
  }

  /**
   * Changes what the edit names and applies it: a running slot whose command, env or metering changed (or, where
   * slots run as their own accounts, its memory limit, a cgroup limit set at start) is restarted with the new ones.
   */
  async update(id: string, input: UpdateSlotInput): Promise<Slot> {
    this.assertRunning();
    await this.locks.run(id, async () => {
      const row = this.requireRow(id);
      const changes: Partial<SlotRow> = {};
      const said: string[] = [];
      let restart = false;

      // Everything is checked before anything changes.
      if (input.name !== undefined && input.name !== row.name) {
        const other = this.deps.repo.getByName(input.name);
        if (other && other.id !== id) throw nameTaken(input.name);
        changes.name = input.name;
        said.push(`renamed from ${row.name} to ${input.name}`);
      }
      const env = input.env ?? row.env;
      if (input.command !== undefined && !sameJson(input.command, row.command)) {
        const argv = resolveArgv(input.command, this.shell);
        if (!findExecutable(argv[0]!, env.PATH ?? process.env.PATH, row.workDir)) {
          throw new AppError(
            AgentErrorCode.SLOT_COMMAND_NOT_FOUND,
            400,
            missingProgramMessage(input.command, argv[0]!),
          );
        }
        Object.assign(changes, { command: input.command, argv });
        said.push(`command ${describeCommand({ ...row, command: input.command, argv })}`);
        restart = true;
      }
      if (input.env !== undefined && !sameJson(sortedEntries(input.env), sortedEntries(row.env))) {
        changes.env = input.env;
        // Names only: values may be secrets, and events are shown to anyone with the admin token.
        said.push(`environment ${Object.keys(input.env).sort().join(', ') || '(none)'}`);
        restart = true;
      }
      if (input.memoryLimitMb !== undefined && input.memoryLimitMb !== row.memoryLimitMb) {
        changes.memoryLimitMb = input.memoryLimitMb;
        said.push(`memory limit ${input.memoryLimitMb === null ? 'none' : `${input.memoryLimitMb} MB`}`);
        if (this.deps.paths.account(id, row.ownerId)) restart = true;
      }
      const ownerId = input.ownerId === undefined ? row.ownerId : input.ownerId;
      const metered = input.metered ?? row.meteredKeyId !== null;
      const ownerChanged = ownerId !== row.ownerId;
      if (ownerChanged && this.deps.paths.isolation) {
        throw new AppError(
          AgentErrorCode.SLOT_OWNER_FIXED,
          409,
          "On this host a slot runs as its owner's account, with its home there; it cannot move to another owner. Create a new slot for the new owner instead.",
        );
      }
      if (metered && ownerId === null) {
        throw new AppError(
          AgentErrorCode.SLOT_OWNER_REQUIRED,
          400,
          'A metered slot needs an owner: set ownerId to the user whose key and quotas it uses, or set metered to false.',
        );
      }
      if (ownerChanged || (metered && !row.meteredKeyId)) this.checkOwner(ownerId, metered);
      const rekey = row.meteredKeyId !== null && (!metered || ownerChanged);
      const newKey = metered && (row.meteredKeyId === null || ownerChanged);
      if (ownerChanged) {
        changes.ownerId = ownerId;
        said.push(`owner ${ownerId ?? 'none'}`);
      }

      if (rekey) {
        this.deps.metering?.revokeSlotKeys(id);
        rmSync(this.deps.paths.meteredKeyFile(id), { force: true });
        changes.meteredKeyId = null;
        restart = true;
        if (!metered) said.push('no longer metered');
      }
      if (newKey) {
        let issued: { keyId: string; prefix: string; secret: string };
        try {
          issued = this.deps.metering!.issueSlotKey(ownerId!, id, changes.name ?? row.name);
        } catch (error) {
          // The old key is gone already: the registry must not keep pointing at it.
          if (rekey) this.deps.repo.update(id, { meteredKeyId: null });
          throw error;
        }
        writeFileSync(this.deps.paths.meteredKeyFile(id), issued.secret, { mode: 0o600 });
        changes.meteredKeyId = issued.keyId;
        said.push(`metered through the gateway with key ${issued.prefix}…`);
        restart = true;
      }
      if (said.length === 0) return;

      // `null` clears a column: the repository skips only undefined.
      const updated = this.deps.repo.update(id, changes)!;
      const running = updated.desiredState === 'running' && !updated.failedReason;
      this.deps.repo.addEvent(
        id,
        'edited',
        `${said.join('; ')}${restart ? (running ? '; restarting to apply it' : '; applies at its next start') : ''}`,
      );
      this.deps.logger.info({ slotId: id, changed: Object.keys(changes), restart: restart && running }, 'slot edited');
      if (restart && running) await this.relaunch(updated, 'restarted to apply an edit');
    });
    return this.get(id);
  }

  /** Ends the slot's program and starts it with the registry's settings (caller holds the lock). */
  private async relaunch(row: SlotRow, why: string): Promise<void> {
    await this.deps.supervisor.remove(processName(row.id));
    await this.deps.backends[row.terminal].endSession(row);
    await this.launch(row, why, 'restarted');
  }

  async deleteSlot(
    id: string,
    workDir: 'keep' | 'remove',
  ): Promise<{ id: string; deleted: true; removedPaths: string[]; keptPaths: string[] }> {
    this.assertRunning();
    return this.locks.run(id, async () => {
      const row = this.requireRow(id);
      const result = await this.removeEverything(row, workDir);
      this.deps.logger.info({ slotId: id, workDir }, 'slot deleted');
      return { id, deleted: true as const, ...result };
    });
  }

  /** A metered slot's key was rotated: the slot uses the new one from its next start. */
  replaceMeteredKey(slotId: string, keyId: string, secret: string, prefix: string): void {
    const row = this.deps.repo.get(slotId);
    if (!row?.meteredKeyId) return;
    writeFileSync(this.deps.paths.meteredKeyFile(slotId), secret, { mode: 0o600 });
    this.deps.repo.update(slotId, { meteredKeyId: keyId });
    this.deps.repo.addEvent(
      slotId,
      'metering',
      `metered key rotated to ${prefix}…; the slot's program gets it when the slot restarts (the old key works until its grace period ends)`,
    );
  }

  /** `origin`: the page origin the terminal will be opened from; null for clients without one (the CLI). */
  issueTicket(id: string, mode: TerminalMode, origin: string | null = null): TerminalTicket {
    const row = this.requireRow(id);
    const open = this.deps.backends[row.terminal].isOpen(id);
    if (row.desiredState !== 'running' || row.failedReason || !open) {
      throw new AppError(
        AgentErrorCode.SLOT_NOT_RUNNING,
        409,
        `Slot ${row.name} is ${row.failedReason ? 'failed' : row.desiredState === 'stopped' ? 'stopped' : 'starting'}; start it (POST ${API_PREFIX}/slots/${id}/start) before opening its terminal.`,
      );
    }
    const ttlMs = this.deps.config.terminal.ticketTtlSeconds * 1000;
    const { ticket, expiresAt } = this.deps.tickets.issue({ slotId: id, mode, origin }, ttlMs);
    return {
      ticket,
      slotId: id,
      mode,
      expiresAt: new Date(expiresAt).toISOString(),
      path: `${API_PREFIX}/slots/${id}/terminal?ticket=${encodeURIComponent(ticket)}`,
    };
  }

  /** The backend holding a slot's terminal; the built-in one for an unknown slot (which it then refuses). */
  backendOf(id: string): TerminalBackend {
    return this.deps.backends[this.deps.repo.get(id)?.terminal ?? 'builtin'];
  }

  /** Counts for /health, without asking PM2. */
  counts(): { total: number; running: number; failed: number } {
    const rows = this.deps.repo.list();
    return {
      total: rows.length,
      running: rows.filter((r) => r.desiredState === 'running' && !r.failedReason).length,
      failed: rows.filter((r) => r.failedReason).length,
    };
  }

  // ---------------------------------------------------------------- runtime

  private assertRunning(): void {
    if (this.stopped)
      throw new AppError(
        AgentErrorCode.AGENT_SHUTTING_DOWN,
        503,
        'The agent is shutting down; retry in a few seconds.',
      );
    if (!this.started)
      throw new AppError(
        AgentErrorCode.SUPERVISOR_UNAVAILABLE,
        503,
        'The agent is still connecting to PM2; retry in a few seconds.',
      );
  }

  private assertBackend(terminal: SlotRow['terminal']): void {
    const backend = this.deps.backends[terminal];
    if (this.deps.accounts && !backend.supportsSlotAccounts) {
      throw new AppError(
        AgentErrorCode.SLOT_BACKEND_UNAVAILABLE,
        400,
        `This host runs each slot as its own account, which the ${terminal} terminal does not support yet. Use terminal "builtin".`,
      );
    }
    const problem = backend.problem();
    if (problem) throw new AppError(AgentErrorCode.SLOT_BACKEND_UNAVAILABLE, problem.status, problem.message);
  }

  private requireRow(id: string): SlotRow {
    const row = this.deps.repo.get(id);
    if (!row) throw notFound(id);
    return row;
  }

  private prepareFolders(row: SlotRow): void {
    const { paths } = this.deps;
    mkdirSync(paths.slotDir(row.id), { recursive: true, mode: 0o700 });
    mkdirSync(paths.logDir, { recursive: true, mode: 0o700 });
    // An isolated slot's home and work dir belong to its account: its launcher makes them.
    if (this.deps.accounts) return;
    if (!existsSync(row.homeDir)) {
      mkdirSync(row.homeDir, { recursive: true, mode: 0o700 });
      // A new home starts like a new user's: the distribution's skeleton files (shell rc and profile).
      if (existsSync('/etc/skel'))
        cpSync('/etc/skel', row.homeDir, { recursive: true, force: false, errorOnExist: false });
    }
    mkdirSync(`${row.homeDir}/.claude`, { recursive: true, mode: 0o700 });
    if (row.workDirManaged) mkdirSync(row.workDir, { recursive: true, mode: 0o700 });
  }

  private async processes(): Promise<Map<string, SupervisedProcess>> {
    try {
      const list = await this.deps.supervisor.list();
      return new Map(list.filter((p) => slotIdOfProcess(p.name)).map((p) => [slotIdOfProcess(p.name)!, p]));
    } catch (error) {
      throw new AppError(
        AgentErrorCode.SUPERVISOR_UNAVAILABLE,
        503,
        `PM2 is not answering (${(error as Error).message}). The agent keeps retrying; check its log, or restart the agent.`,
      );
    }
  }

  private views(rows: SlotRow[], processes: Map<string, SupervisedProcess>): Slot[] {
    const roots = new Map<string, number>();
    for (const row of rows) {
      const pid = processes.get(row.id)?.pid;
      if (pid) roots.set(row.id, pid);
    }
    const table = readProcessTable();
    const usage = this.sampler.sample(roots, table);
    const children = childrenOf(table);
    const now = Date.now();
    return rows.map((row) => {
      const proc = processes.get(row.id) ?? null;
      const use: TreeUsage | undefined = usage.get(row.id);
      const activity = Math.max(
        row.lastActivityAt ? Date.parse(row.lastActivityAt) : 0,
        this.deps.backends[row.terminal].lastActivity(row.id) ?? 0,
      );
      const live = proc !== null && proc.status === 'online';
      const crashLoop = this.crashLoopOf(row, proc, now);
      return {
        id: row.id,
        name: row.name,
        command: row.command,
        argv: row.argv,
        env: row.env,
        workDir: row.workDir,
        homeDir: row.homeDir,
        memoryLimitMb: row.memoryLimitMb,
        terminal: row.terminal,
        desiredState: row.desiredState,
        state: row.failedReason
          ? 'failed'
          : row.desiredState === 'stopped'
            ? 'stopped'
            : crashLoop
              ? 'restarting'
              : live
                ? 'running'
                : 'starting',
        failure: row.failedReason ? { reason: row.failedReason, at: row.failedAt ?? row.updatedAt } : null,
        crashLoop,
        pid: live ? proc.pid : null,
        programPid: live && proc.pid ? programPid(proc.pid, children, table) : null,
        uptimeMs: live && proc.startedAt ? Math.max(0, now - proc.startedAt) : null,
        restarts: row.restarts,
        cpuPercent: use?.cpuPercent ?? null,
        memoryBytes: use ? use.memoryBytes : null,
        viewers: this.deps.backends[row.terminal].viewers(row.id),
        size: { cols: row.cols, rows: row.rows },
        lastActivityAt: activity > 0 ? new Date(activity).toISOString() : null,
        ownerId: row.ownerId,
        account: this.deps.paths.account(row.id, row.ownerId),
        metered: row.meteredKeyId
          ? { keyId: row.meteredKeyId, keyPrefix: this.deps.metering?.keyPrefix(row.meteredKeyId) ?? '' }
          : null,
        createdAt: row.createdAt,
        updatedAt: row.updatedAt,
      };
    });
  }

  private checkOwner(ownerId: string | null, metered: boolean): void {
    if (ownerId === null) return;
    if (!this.deps.metering) {
      throw new AppError(
        AgentErrorCode.SLOT_OWNER_NOT_FOUND,
        400,
        'This agent has no users module; create the slot without ownerId.',
      );
    }
    this.deps.metering.requireOwner(ownerId);
    if (metered && this.deps.metering.gatewayUrl() === null) {
      throw new AppError(
        AgentErrorCode.GATEWAY_DISABLED,
        409,
        'The gateway is not listening, so a metered slot could not reach it. Enable it (SLOTDECK_AGENT_GATEWAY_ENABLED=true) or create the slot unmetered.',
      );
    }
  }

  /** ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY for Claude Code in a metered slot; they win over the slot's own env. */
  private meteredEnvironment(row: SlotRow): Record<string, string> {
    if (!row.meteredKeyId) return {};
    const url = this.deps.metering?.gatewayUrl() ?? null;
    let secret: string;
    try {
      secret = readFileSync(this.deps.paths.meteredKeyFile(row.id), 'utf8').trim();
    } catch {
      secret = '';
    }
    if (!url || !secret) {
      this.deps.logger.warn({ slotId: row.id, gateway: url !== null }, 'metered slot starts without its gateway key');
      return {};
    }
    return { ANTHROPIC_BASE_URL: url, ANTHROPIC_API_KEY: secret };
  }

  /** Starts the slot's process under PM2 (caller holds the slot's lock). */
  private async launch(row: SlotRow, why: string, kind: 'started' | 'restarted' = 'started'): Promise<void> {
    const { paths, supervisor } = this.deps;
    this.prepareFolders(row);
    const account = paths.account(row.id, row.ownerId);
    if (account) await this.deps.accounts!.ensure(account);
    // A new session starts a new exit record (the launcher appends a line per program exit).
    rmSync(paths.exitFile(row.id), { force: true });
    if (account) {
      // The agent's own file in its own folder, which the account may only append to (through its group): the
      // account cannot swap it for a link or a FIFO that the agent would then read.
      const fd = openSync(paths.exitFile(row.id), 'wx', 0o600);
      fchmodSync(fd, 0o620);
      closeSync(fd);
    }
    this.consumedExit.delete(row.id);
    writeEnvFile(
      paths.envFile(row.id),
      { ...slotEnvironment(row, paths, this.shell), ...this.meteredEnvironment(row) },
      { workDir: row.workDir, argv: row.argv, isolated: account !== null },
      account ? 0o640 : 0o600,
    );
    await this.clearStaleSession(row);
    this.deps.repo.update(row.id, { supervisorRestartsSeen: 0 });
    const backend = this.deps.backends[row.terminal];
    const spec = { name: processName(row.id), ...backend.processSpec(row) };
    // Open first: the terminal attaches the moment the new session can be reached.
    backend.open(row, false);
    try {
      await supervisor.start(spec);
    } catch (error) {
      await backend.release(row.id, 'slot could not start');
      throw new AppError(
        AgentErrorCode.SUPERVISOR_UNAVAILABLE,
        503,
        `PM2 could not start slot ${row.name}: ${(error as Error).message}. Retry, or check the agent's log.`,
      );
    }
    this.deps.repo.addEvent(row.id, kind, why);
  }

  /** Ends the slot's processes and detaches (caller holds the lock). */
  private async halt(row: SlotRow): Promise<void> {
    await this.deps.supervisor.remove(processName(row.id));
    // PM2 signals the helper's sudo; the holder runs as another account, so make sure it ended.
    await this.stopAccountHolder(row);
    const backend = this.deps.backends[row.terminal];
    await backend.endSession(row);
    await backend.release(row.id);
    this.deps.tickets.revokeSlot(row.id);
  }

  private async stopAccountHolder(row: SlotRow): Promise<void> {
    const account = this.deps.paths.account(row.id, row.ownerId);
    if (!account) return;
    await this.deps
      .accounts!.stop(account, row.id)
      .catch((error: unknown) =>
        this.deps.logger.warn({ slotId: row.id, err: error }, 'could not end the slot account holder'),
      );
  }

  private async removeEverything(
    row: SlotRow,
    workDir: 'keep' | 'remove',
  ): Promise<{ removedPaths: string[]; keptPaths: string[] }> {
    const { paths } = this.deps;
    const account = paths.account(row.id, row.ownerId);
    // Computed while the row exists: the account (and so these paths) depends on it.
    const files = [
      paths.envFile(row.id),
      paths.exitFile(row.id),
      paths.socket(row.id),
      paths.incomingSocket(row.id),
      paths.tmuxConfig(row.id),
      paths.ttydSecretFile(row.id),
      paths.outLog(row.id),
      paths.errorLog(row.id),
    ];
    await this.halt(row);
    if (row.meteredKeyId) this.deps.metering?.revokeSlotKeys(row.id);
    rmSync(paths.meteredKeyFile(row.id), { force: true });
    this.deps.repo.delete(row.id);
    await this.deps.backends[row.terminal].forget(row.id);
    this.consumedExit.delete(row.id);
    const removed: string[] = [];
    const kept: string[] = [];
    for (const file of files) {
      if (file === null) continue;
      try {
        rmSync(file, { force: true });
      } catch (error) {
        // A slot's account can put a folder where its socket goes: that must not keep the slot from going.
        this.deps.logger.warn({ slotId: row.id, file, err: error }, 'could not remove a slot file');
      }
    }
    if (workDir === 'remove') {
      rmSync(paths.slotDir(row.id), { recursive: true, force: true });
      if (account) {
        await this.removeFromAccount(account, row);
        removed.push(dirname(row.homeDir));
      }
      removed.push(paths.slotDir(row.id));
      // A work dir the admin chose is theirs: the agent never deletes it.
      if (!row.workDirManaged) kept.push(row.workDir);
    } else {
      kept.push(row.homeDir, row.workDir);
    }
    return { removedPaths: removed, keptPaths: kept };
  }

  /** Removes an isolated slot's home and work dir, and its account once no slot runs as it. */
  private async removeFromAccount(account: string, row: SlotRow): Promise<void> {
    const accounts = this.deps.accounts!;
    const shared = this.deps.repo.list().some((other) => this.deps.paths.account(other.id, other.ownerId) === account);
    try {
      if (shared) await accounts.removeSlot(account, row.id);
      else await accounts.removeAccount(account);
    } catch (error) {
      this.deps.logger.warn({ slotId: row.id, account, err: error }, 'could not remove the slot account files');
    }
  }

  /** What an earlier session left must not block the new one (a holder PM2 no longer knows, a dead socket). */
  private async clearStaleSession(row: SlotRow): Promise<void> {
    if (this.deps.paths.account(row.id, row.ownerId)) {
      // Another account's processes: only the helper may end them. The socket the agent took is its own to remove;
      // one left in s/ the holder removes itself.
      await this.stopAccountHolder(row);
      rmSync(this.deps.paths.socket(row.id), { force: true });
      return;
    }
    await this.deps.backends[row.terminal].prepareStart(row);
  }

  // ---------------------------------------------------------------- reconcile

  /** Brings PM2 in line with the registry. Concurrent calls share one run plus at most one queued run. */
  reconcile(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.reconciling) {
      this.reconcileQueued = true;
      return this.reconciling;
    }
    this.reconciling = this.reconcileOnce()
      .catch((error: unknown) => this.deps.logger.error({ err: error }, 'reconcile failed; retrying on the next tick'))
      .finally(() => {
        this.reconciling = null;
        if (this.reconcileQueued) {
          this.reconcileQueued = false;
          void this.reconcile();
        }
      });
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    const processes = new Map<string, SupervisedProcess>();
    for (const proc of await this.deps.supervisor.list()) processes.set(proc.name, proc);
    const rows = this.deps.repo.list();
    const known = new Set(rows.map((row) => processName(row.id)));

    const roots = new Map<string, number>();
    for (const row of rows) {
      const pid = processes.get(processName(row.id))?.pid;
      if (pid) roots.set(row.id, pid);
    }
    const usage = this.sampler.sample(roots);

    for (const row of rows) {
      if (this.stopped) return;
      await this.locks
        .run(row.id, () => this.reconcileSlot(row.id, usage.get(row.id)))
        .catch((error: unknown) => {
          this.deps.logger.error({ err: error, slotId: row.id }, 'could not reconcile slot');
        });
    }
    for (const [name, proc] of processes) {
      if (!slotIdOfProcess(name) || known.has(name)) continue;
      // A slot-* process the registry does not know (its slot was deleted while the agent was away).
      this.deps.logger.warn({ process: name, pid: proc.pid }, 'stopping an orphan slot process');
      await this.deps.supervisor.remove(name).catch(() => undefined);
    }
  }

  private async reconcileSlot(id: string, use: TreeUsage | undefined): Promise<void> {
    // Read again under the lock: an API call may have changed the slot since the list was taken.
    const row = this.deps.repo.get(id);
    if (!row) return;
    const proc = await this.deps.supervisor.describe(processName(id));
    const backend = this.deps.backends[row.terminal];
    const terminalOpen = backend.isOpen(id);

    const activity = backend.lastActivity(id);
    if (activity && (!row.lastActivityAt || Date.parse(row.lastActivityAt) < activity)) {
      this.deps.repo.update(id, { lastActivityAt: new Date(activity).toISOString() });
    }

    if (row.desiredState === 'stopped' || row.failedReason) {
      if (proc) await this.halt(row);
      else if (terminalOpen) await backend.release(id);
      return;
    }
    if (!proc || proc.status === 'stopped' || proc.status === 'unknown') {
      await this.launch(row, proc ? `started again: PM2 had it ${proc.status}` : 'started: it was not running');
      return;
    }
    if (proc.status === 'errored') {
      await this.fail(row, 'PM2 stopped restarting it (errored)');
      return;
    }

    // Exits count the moment PM2 reports them, not when it starts the program again after its back-off: a crash
    // loop shows (and fails) at once, without one more start past the limit.
    if (proc.exits < row.supervisorRestartsSeen) {
      // PM2 counts from 0 again after its daemon restarted.
      this.deps.repo.update(id, { supervisorRestartsSeen: proc.exits });
    } else if (proc.exits > row.supervisorRestartsSeen) {
      const fresh = proc.exits - row.supervisorRestartsSeen;
      const exit = await this.describeExit(row, fresh);
      this.deps.repo.update(id, { restarts: row.restarts + fresh, supervisorRestartsSeen: proc.exits });
      for (let i = 0; i < fresh; i++) this.deps.repo.addEvent(id, 'exited', `${exit}${RESTARTING_SUFFIX}`);
      const { maxRestarts, windowSeconds } = this.deps.config.crashLoop;
      const recent = this.recentExits(id);
      if (recent > maxRestarts) {
        const output = this.recentOutput(row);
        await this.fail(
          row,
          `it ended ${recent} times within ${windowSeconds} s (the limit is ${maxRestarts}); last: ${exit}${output ? `; last output: "${output}"` : ''}. Fix the command or its environment, then start the slot again.`,
        );
        return;
      }
    }

    if (!terminalOpen) {
      // A slot that ran while no agent was attached (the agent restarted): take it over.
      backend.open(row, true);
    }

    if (row.memoryLimitMb && use && proc.status === 'online' && use.memoryBytes > row.memoryLimitMb * 1024 * 1024) {
      const usedMb = Math.round(use.memoryBytes / 1024 / 1024);
      this.deps.logger.warn(
        { slotId: id, usedMb, limitMb: row.memoryLimitMb },
        'slot over its memory limit; restarting',
      );
      this.deps.repo.addEvent(
        id,
        'memory-limit',
        `used ${usedMb} MB, over its ${row.memoryLimitMb} MB limit; restarted`,
      );
      this.deps.repo.update(id, { restarts: row.restarts + 1 });
      await this.deps.supervisor.remove(processName(id));
      await this.launch(row, 'restarted after exceeding its memory limit', 'restarted');
    }
  }

  /**
   * Exits within the crash-loop window since the slot was last started (by the admin, at creation, or by the
   * agent): starting a failed slot again gives it the whole allowance again.
   */
  private recentExits(id: string): number {
    const windowStart = Date.now() - this.deps.config.crashLoop.windowSeconds * 1000;
    const launched = [this.deps.repo.latestEvent(id, 'started'), this.deps.repo.latestEvent(id, 'restarted')]
      .map((event) => (event ? Date.parse(event.at) : 0))
      .reduce((a, b) => Math.max(a, b), 0);
    return this.deps.repo.countEventsSince(id, 'exited', new Date(Math.max(windowStart, launched)).toISOString());
  }

  /** What the slot list shows while a slot's program keeps ending, or null while it runs steadily. */
  private crashLoopOf(
    row: SlotRow,
    proc: SupervisedProcess | null,
    now: number,
  ): NonNullable<Slot['crashLoop']> | null {
    if (row.desiredState !== 'running' || row.failedReason) return null;
    const exits = this.recentExits(row.id);
    if (exits === 0) return null;
    const { maxRestarts, windowSeconds } = this.deps.config.crashLoop;
    // A program that has stayed up for a while after its last exit runs again, whatever the window still counts.
    const steadyMs = Math.min(STEADY_UPTIME_MS, windowSeconds * 1000);
    if (proc?.status === 'online' && proc.startedAt && now - proc.startedAt >= steadyMs) return null;
    const last = this.deps.repo.latestEvent(row.id, 'exited')?.message ?? '';
    return {
      exits,
      limit: maxRestarts,
      windowSeconds,
      lastExit: last.endsWith(RESTARTING_SUFFIX) ? last.slice(0, -RESTARTING_SUFFIX.length) : last,
    };
  }

  private async fail(row: SlotRow, reason: string): Promise<void> {
    this.deps.logger.warn({ slotId: row.id, reason }, 'slot failed');
    this.deps.repo.update(row.id, {
      failedReason: reason,
      failedAt: new Date().toISOString(),
      desiredState: 'stopped',
    });
    this.deps.repo.addEvent(row.id, 'failed', reason);
    await this.halt(row);
  }

  /**
   * What ended the slot's last `restarts` sessions, from the launcher's exit record (a line per program exit). Lines
   * are matched to PM2's restarts by count, not by time: a program that exits at once can write its next line
   * before the agent has looked at the previous restart, and that line belongs to the next restart.
   */
  private async describeExit(row: SlotRow, restarts: number): Promise<string> {
    const file = this.deps.paths.exitFile(row.id);
    let statuses = readExitStatuses(file);
    let seen = this.consumedExit.get(row.id) ?? Math.max(0, statuses.length - restarts);
    if (seen > statuses.length) seen = Math.max(0, statuses.length - restarts);
    // PM2 may report the restart a moment before the launcher's line is on disk: give it a little time before
    // concluding that the holder was killed.
    for (let wait = 0; statuses.length <= seen && wait < 10; wait++) {
      await sleep(30);
      statuses = readExitStatuses(file);
    }
    const used = Math.min(statuses.length - seen, restarts);
    this.consumedExit.set(row.id, seen + used);
    if (used > 0) return describeExitStatus(row.argv[0]!, statuses[seen + used - 1]!);
    return 'the session ended without its program exiting (its holder was killed)';
  }

  private recentOutput(row: SlotRow): string {
    return this.deps.backends[row.terminal].recentText(row.id).slice(-300);
  }
}

/** The exit statuses the launcher recorded, oldest first (a line `<status> <epoch s>` per program exit). */
function readExitStatuses(file: string): number[] {
  const text = readSmallFile(file);
  if (text === null) return [];
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => Number(line.trim().split(/\s+/)[0]))
    .filter((status) => Number.isInteger(status));
}

const SIGNAL_NAMES = new Map(Object.entries(osConstants.signals).map(([name, number]) => [number, name]));

/** How a program ended, in words: a shell's 127 means the command was not found, 128+n a signal. */
export function describeExitStatus(program: string, status: number): string {
  if (status === 127) return `${program} exited with code 127 (command not found)`;
  if (status === 126) return `${program} exited with code 126 (found but could not be run: not executable?)`;
  const signal = status > 128 ? SIGNAL_NAMES.get(status - 128) : undefined;
  if (signal) return `${program} was ended by ${signal} (exit status ${status})`;
  return `${program} exited with code ${status}`;
}

function isLive(proc: SupervisedProcess): boolean {
  return proc.status === 'online' || proc.status === 'launching';
}

function nameTaken(name: string): AppError {
  return new AppError(
    AgentErrorCode.SLOT_NAME_TAKEN,
    409,
    `A slot named "${name}" already exists. Choose another name, or delete that slot first.`,
  );
}

function checkWorkDir(dir: string): void {
  let ok: boolean;
  try {
    ok = statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new AppError(
      AgentErrorCode.SLOT_WORKDIR_INVALID,
      400,
      `The work directory ${dir} does not exist on this host. Create it first, or leave workDir out to get a fresh folder.`,
    );
  }
}

function sortedEntries(record: Record<string, string>): Array<[string, string]> {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function describeCommand(row: Pick<SlotRow, 'command' | 'argv'>): string {
  return row.command.preset === 'custom' ? row.argv.join(' ') : `${row.command.preset}: ${row.argv.join(' ')}`;
}

/** The slot's own program: the child of the launcher, which is the holder's child (sleep/stty are the launcher waiting). */
function programPid(
  holder: number,
  children: Map<number, number[]>,
  table: ReturnType<typeof readProcessTable>,
): number | null {
  // On an isolated host PM2's process is sudo (running the helper), and dtach is its child.
  const dtach = table.get(holder)?.command === 'sudo' ? (children.get(holder)?.[0] ?? holder) : holder;
  for (const launcher of children.get(dtach) ?? []) {
    for (const child of children.get(launcher) ?? []) {
      const command = table.get(child)?.command;
      if (command !== 'sleep' && command !== 'stty') return child;
    }
  }
  return null;
}
