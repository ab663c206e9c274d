import { closeSync, cpSync, existsSync, fchmodSync, mkdirSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';
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
import type { OpsEvents } from '../../ops/events.js';
import { endSessions, sessionsOf, slotProcessOf, slotProcesses, uidOf } from '../../supervisor/sessions.js';
import {
  SupervisorUnavailableError,
  type DaemonChange,
  type ProcessSupervisor,
  type SupervisedProcess,
} from '../../supervisor/supervisor.js';
import { findExecutable } from '../../util/executables.js';
import { commandLineOf, readProcessTable } from '../../util/procfs.js';
import { randomId } from '../../util/ids.js';
import { KeyedMutex } from '../../util/keyed-mutex.js';
import type { TerminalBackend } from '../terminal/backend.js';
import type { TicketStore } from '../terminal/tickets.js';
import { loginShell, missingProgramMessage, resolveArgv } from './command.js';
import type { SlotAccounts } from './accounts.js';
import { slotEnvironment, writeEnvFile } from './launch.js';
import { processName, slotIdOfProcess, type SlotPaths } from './paths.js';
import { SlotExits } from './exits.js';
import { MeteredSlots, type SlotMetering } from './metering.js';
import { SlotReconciler } from './reconciler.js';
import { SlotNameTakenError, type SlotRepository, type SlotRow } from './repository.js';
import { SlotViews } from './views.js';
import { storageFullError } from '../../ops/storage.js';

export type { SlotMetering } from './metering.js';

type CreateSlotInput = Required<Omit<CreateSlotBody, 'workDir'>> & { workDir?: string | undefined };
type UpdateSlotInput = {
  [K in keyof UpdateSlotBody]?: Exclude<UpdateSlotBody[K], undefined> | undefined;
};

export interface HostTools {
  dtach: string | null;
  ttyd: string | null;
  tmux: string | null;
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
  /** The storage monitor (ops/storage.ts): no slot is created while the data dir is full. */
  storage?: { readonly full: boolean };
  /** Where slot state changes, restarts and self-healing (a new PM2 daemon adopting the sessions) are reported. */
  ops?: OpsEvents;
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
  private readonly shell = loginShell();
  private readonly exits: SlotExits;
  private readonly metered: MeteredSlots;
  private readonly slotViews: SlotViews;
  private readonly reconciler: SlotReconciler;
  private stopped = false;
  private started = false;
  private unsubscribeDaemon: (() => void) | null = null;

  constructor(private readonly deps: SlotServiceDeps) {
    const { config, repo, paths, backends, logger } = deps;
    this.exits = new SlotExits({ repo, paths, crashLoop: config.crashLoop });
    this.metered = new MeteredSlots({ metering: deps.metering, paths, logger });
    this.slotViews = new SlotViews({ backends, paths, exits: this.exits, metered: this.metered });
    this.reconciler = new SlotReconciler({
      config,
      repo,
      supervisor: deps.supervisor,
      backends,
      logger,
      locks: this.locks,
      exits: this.exits,
      runtime: {
        launch: (row, why, kind) => this.launch(row, why, kind),
        halt: (row) => this.halt(row),
        adopt: (row) => this.adopt(row),
        hasLiveSession: (row) => this.hasLiveSession(row),
        endProcess: (row) => this.endProcess(row),
        holderPid: (row, pid) => this.holderPid(row, pid),
      },
      ...(deps.ops ? { ops: deps.ops } : {}),
    });
  }

  /** Connects to PM2, takes over running slots and starts the reconcile timer. */
  async start(): Promise<void> {
    await this.deps.supervisor.connect();
    this.unsubscribeDaemon =
      this.deps.supervisor.onDaemonChange?.((change) => void this.onDaemonChange(change)) ?? null;
    this.reconciler.watch();
    this.adoptIntoAccounts();
    this.started = true;
    await this.reconciler.reconcile();
    this.reconciler.startTimer();
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

  /** Brings PM2 in line with the registry now (it also does on its own). */
  reconcile(): Promise<void> {
    return this.reconciler.reconcile();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribeDaemon?.();
    await this.reconciler.stop();
  }

  /**
   * PM2's daemon died (kill -9, the OOM killer) and the supervisor connected a new one: the slots' sessions kept
   * running without it. The next reconcile adopts each one into the new daemon (slot-holder.sh watches a live
   * session instead of replacing it), so the programs keep their PIDs and nobody loses their shell.
   */
  private async onDaemonChange(change: DaemonChange): Promise<void> {
    const { logger, ops } = this.deps;
    if (change.kind === 'lost') {
      logger.error({ pid: change.pid }, `${change.message}; starting a new daemon and adopting the running slots`);
      return;
    }
    if (this.stopped) return;
    this.endOrphanSessions();
    const before = this.adoptedCount;
    await this.reconciler.reconcile();
    const adopted = this.adoptedCount - before;
    const message = `the PM2 daemon (pid ${change.previousPid ?? '?'}) died; a new one (pid ${change.pid ?? '?'}) took over in ${(change.downMs / 1000).toFixed(1)} s and adopted ${adopted} running session${adopted === 1 ? '' : 's'}`;
    logger.warn({ previousPid: change.previousPid, pid: change.pid, downMs: change.downMs, adopted }, message);
    ops?.emit('recovery', { kind: 'supervisor-restarted', target: null, message });
  }

  private adoptedCount = 0;

  /** Sessions in the run folder of slots the registry no longer has (deleted while PM2 was away): ended. */
  private endOrphanSessions(): void {
    const { paths, repo, logger } = this.deps;
    let entries: string[];
    try {
      entries = readdirSync(paths.runDir);
    } catch {
      return;
    }
    for (const entry of entries) {
      const id = /^([a-z0-9]{10})\.sock$/.exec(entry)?.[1];
      if (!id || repo.get(id)) continue;
      const socket = `${paths.runDir}/${entry}`;
      const holders = slotProcesses(socket, agentUid()).map((found) => found.pid);
      logger.warn({ socket, holders }, 'ending the session of a slot that no longer exists');
      void endSessions(sessionsOf(holders)).finally(() => rmSync(socket, { force: true }));
    }
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
    const views = this.slotViews.build(rows, processes);
    return filter.state ? views.filter((slot) => slot.state === filter.state) : views;
  }

  async get(id: string): Promise<Slot> {
    this.requireRow(id);
    const processes = await this.processes();
    return this.slotViews.build([this.requireRow(id)], processes)[0]!;
  }

  events(id: string, limit: number): SlotEvent[] {
    this.requireRow(id);
    return this.deps.repo.events(id, limit);
  }

  async create(input: CreateSlotInput): Promise<Slot> {
    if (this.deps.storage?.full) throw storageFullError();
    // Refused before anything is written: a create while PM2 is away used to leave a slot that appeared later.
    this.assertRunning();
    if (this.deps.repo.getByName(input.name)) throw nameTaken(input.name);
    const argv = resolveArgv(input.command, this.shell);
    const path = input.env.PATH ?? process.env.PATH;
    if (input.workDir !== undefined) checkWorkDir(input.workDir);
    if (!findExecutable(argv[0]!, path, input.workDir ?? process.cwd())) {
      throw new AppError(AgentErrorCode.SLOT_COMMAND_NOT_FOUND, 400, missingProgramMessage(input.command, argv[0]!));
    }
    this.assertBackend(input.terminal);
    this.metered.checkOwner(input.ownerId, input.metered);

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
      let issued: { keyId: string; prefix: string };
      try {
        issued = this.metered.issueKey(input.ownerId, id, row.name);
      } catch (error) {
        await this.discard(row);
        throw error;
      }
      Object.assign(row, this.deps.repo.update(id, { meteredKeyId: issued.keyId }));
      this.deps.repo.addEvent(id, 'metering', `metered through the gateway with key ${issued.prefix}…`);
    }
    if (input.start) {
      try {
        await this.locks.run(id, () => this.launch(row, 'created'));
      } catch (error) {
        // A slot that cannot start is not left half made: nothing of it remains.
        await this.discard(row);
        throw error;
      }
    }
    return this.get(id);
  }

  /** Undoes a create that failed: the registry row goes even when PM2 cannot be asked to end the process. */
  private async discard(row: SlotRow): Promise<void> {
    await this.locks
      .run(row.id, () => this.removeEverything(row, 'remove'))
      .catch((error: unknown) => this.deps.logger.warn({ slotId: row.id, err: error }, 'cleaning up a failed create'));
    if (this.deps.repo.get(row.id)) {
      this.metered.revokeKeys(row.id, row.meteredKeyId !== null);
      this.deps.repo.delete(row.id);
      rmSync(this.deps.paths.slotDir(row.id), { recursive: true, force: true });
    }
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

  /** `by`: who asked, for the slot's event list (an end user stops their own slot from the portal). */
  async stopSlot(id: string, by = 'the admin'): Promise<Slot> {
    this.assertRunning();
    await this.locks.run(id, async () => {
      const row = this.requireRow(id);
      this.deps.repo.update(id, { desiredState: 'stopped' });
      await this.halt(row);
      this.deps.repo.addEvent(id, 'stopped', `stopped by ${by}`);
    });
    return this.get(id);
  }

  async restartSlot(id: string, by = 'the admin'): Promise<Slot> {
    this.assertRunning();
    await this.locks.run(id, async () => {
      const row = this.requireRow(id);
      this.assertBackend(row.terminal);
      const updated = this.deps.repo.update(id, { desiredState: 'running', failedReason: null, failedAt: null })!;
      await this.relaunch(updated, `restarted by ${by}`);
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
      if (ownerChanged || (metered && !row.meteredKeyId)) this.metered.checkOwner(ownerId, metered);
      if (ownerChanged && input.resetHome !== true) {
        throw new AppError(
          AgentErrorCode.SLOT_HOME_RESET_REQUIRED,
          409,
          "The slot's home holds its current owner's Claude login and transcripts, which the new owner must not get. Send resetHome: true with the new ownerId to give the slot a fresh home (the old one is deleted; a running slot restarts), or create a new slot for the new owner.",
        );
      }
      const rekey = row.meteredKeyId !== null && (!metered || ownerChanged);
      const newKey = metered && (row.meteredKeyId === null || ownerChanged);
      if (ownerChanged) {
        changes.ownerId = ownerId;
        said.push(`owner ${ownerId ?? 'none'} with a fresh home (the previous one deleted)`);
        // The previous owner's session must not carry on under the new owner.
        restart = true;
      }

      if (rekey) {
        this.metered.revokeKeys(id, true);
        changes.meteredKeyId = null;
        restart = true;
        if (!metered) said.push('no longer metered');
      }
      if (newKey) {
        let issued: { keyId: string; prefix: string };
        try {
          issued = this.metered.issueKey(ownerId!, id, changes.name ?? row.name);
        } catch (error) {
          // The old key is gone already: the registry must not keep pointing at it.
          if (rekey) this.deps.repo.update(id, { meteredKeyId: null });
          throw error;
        }
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
      if (ownerChanged) await this.freshHome(updated, running);
      else if (restart && running) await this.relaunch(updated, 'restarted to apply an edit');
    });
    return this.get(id);
  }

  /**
   * Ends the slot's program, deletes its home (the previous owner's Claude login and transcripts) and, if the slot
   * should run, starts it again in a new one (caller holds the lock).
   */
  private async freshHome(row: SlotRow, running: boolean): Promise<void> {
    await this.endProcess(row);
    await this.deps.backends[row.terminal].endSession(row);
    rmSync(row.homeDir, { recursive: true, force: true });
    if (running) await this.launch(row, 'restarted with a fresh home for its new owner', 'restarted');
  }

  /** Ends the slot's program and starts it with the registry's settings (caller holds the lock). */
  private async relaunch(row: SlotRow, why: string): Promise<void> {
    await this.endProcess(row);
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
    this.metered.writeKey(slotId, secret);
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
    const { ticket, expiresAt } = this.deps.tickets.issue({ slotId: id, mode, origin, audience: 'admin' }, ttlMs);
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
    const unavailable = this.deps.supervisor.unavailable?.();
    if (unavailable) throw new AppError(AgentErrorCode.SUPERVISOR_UNAVAILABLE, 503, unavailable);
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
      const byId = new Map<string, SupervisedProcess>();
      for (const proc of list) {
        const id = slotIdOfProcess(proc.name);
        if (!id) continue;
        const row = proc.pid ? this.deps.repo.get(id) : null;
        byId.set(id, row && proc.pid ? { ...proc, pid: this.holderPid(row, proc.pid) } : proc);
      }
      return byId;
    } catch (error) {
      if (error instanceof SupervisorUnavailableError)
        throw new AppError(AgentErrorCode.SUPERVISOR_UNAVAILABLE, 503, error.message);
      throw new AppError(
        AgentErrorCode.SUPERVISOR_UNAVAILABLE,
        503,
        `PM2 is not answering (${(error as Error).message}). The agent keeps retrying; check its log, or restart the agent.`,
      );
    }
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
    this.exits.forget(row.id);
    writeEnvFile(
      paths.envFile(row.id),
      { ...slotEnvironment(row, paths, this.shell), ...this.metered.environment(row) },
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

  /**
   * Ends the slot's PM2 process and everything of its sessions (caller holds the lock). PM2 ends only the holder;
   * a login shell's logout (Debian's clear_console) or a background job would outlive it with ppid 1.
   */
  private async endProcess(row: SlotRow): Promise<void> {
    const proc = await this.deps.supervisor.describe(processName(row.id));
    const roots = [...this.sessionHolders(row), ...(proc?.pid ? [proc.pid] : [])];
    const sessions = sessionsOf(roots);
    await this.deps.supervisor.remove(processName(row.id));
    await endSessions(sessions);
  }

  /**
   * The slot's dtach, holder and launcher: their exact command lines naming its socket, run by the uid the slot
   * runs as. Any account can start a process naming another slot's socket; that one is neither taken for the slot's
   * holder nor signalled.
   */
  private slotProcessesOf(row: SlotRow): Array<{ pid: number; role: string }> {
    if (row.terminal !== 'builtin') return [];
    const { paths } = this.deps;
    const account = paths.account(row.id, row.ownerId);
    const uid = account ? this.deps.accounts!.uid(account) : agentUid();
    if (uid === null) return [];
    return slotProcesses(paths.incomingSocket(row.id) ?? paths.socket(row.id), uid, paths.envFile(row.id));
  }

  /** The slot's dtach (and an adopting holder standing in for it). */
  private sessionHolders(row: SlotRow): number[] {
    return this.slotProcessesOf(row)
      .filter((found) => found.role !== 'launcher')
      .map((found) => found.pid);
  }

  /**
   * The pid the slot views and memory limits start from: PM2's, unless PM2 runs a holder that adopted a session
   * (a holder that did not become dtach): then the session's dtach, whose tree holds the slot's programs. On an
   * isolated host PM2's pid is the helper's sudo, so the holder is looked for by the slot's account, not by pid.
   */
  private holderPid(row: SlotRow, pid: number): number {
    if (row.terminal !== 'builtin') return pid;
    const account = this.deps.paths.account(row.id, row.ownerId);
    const uid = account ? this.deps.accounts!.uid(account) : agentUid();
    // Cheap first where it can be (every list and reconcile asks): is PM2's process (on an isolated host, one
    // below the helper's sudo) a holder that did not become dtach? Only then is the session's dtach looked for.
    if (uid === null || !isAdoptingHolder(pid, uid, account ? 3 : 0)) return pid;
    return this.slotProcessesOf(row).find((candidate) => candidate.role === 'dtach')?.pid ?? pid;
  }

  /**
   * Whether the slot's session still runs without PM2 (its daemon died): a dtach answers on its socket. On an
   * isolated host only the socket the agent took from s/ into its own folder (a socket of the account's, checked
   * there) is probed: the account can swap what is in s/ for a link to any socket the agent may reach.
   */
  private async hasLiveSession(row: SlotRow): Promise<boolean> {
    if (row.terminal !== 'builtin') return false;
    const { paths } = this.deps;
    const account = paths.account(row.id, row.ownerId);
    if (account) {
      try {
        this.deps.accounts!.claimSocket(paths.incomingSocket(row.id)!, paths.socket(row.id), account);
      } catch {
        return false;
      }
    }
    return answers(paths.socket(row.id));
  }

  /**
   * Registers a session that outlived its PM2 daemon with the new one, without replacing it (caller holds the
   * lock): the holder PM2 starts watches the live session; exit record, screen and program stay as they are.
   */
  private async adopt(row: SlotRow): Promise<void> {
    const backend = this.deps.backends[row.terminal];
    this.deps.repo.update(row.id, { supervisorRestartsSeen: 0 });
    await this.deps.supervisor.start({ name: processName(row.id), ...backend.processSpec(row) });
    // An agent that restarted too takes the terminal back as it is (a repaint, no "new session" mark).
    if (!backend.isOpen(row.id)) backend.open(row, true);
    this.adoptedCount += 1;
    const message = `its session outlived the PM2 daemon and was adopted by a new one; the program kept running`;
    this.deps.logger.info({ slotId: row.id }, message);
    this.deps.ops?.emit('recovery', { kind: 'slot-adopted', target: row.id, message: `slot ${row.name}: ${message}` });
  }

  /** Ends the slot's processes and detaches (caller holds the lock). */
  private async halt(row: SlotRow): Promise<void> {
    await this.endProcess(row);
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
    this.metered.revokeKeys(row.id, row.meteredKeyId !== null);
    this.deps.repo.delete(row.id);
    await this.deps.backends[row.terminal].forget(row.id);
    this.exits.forget(row.id);
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
}

/** A dtach master answers on the socket (a connection is accepted, then dropped). */
function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection({ path: socket });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Whether a holder of this uid that stands in for an adopted session runs as `pid` or just below it (on an isolated
 * host PM2's pid is the helper's sudo, which runs the holder as a child, or as a grandchild when it forks).
 */
function isAdoptingHolder(pid: number, uid: number, depth: number): boolean {
  let level = [pid];
  for (let below = 0; below <= depth && level.length > 0; below++) {
    for (const candidate of level) {
      const args = commandLineOf(candidate);
      if (args && slotProcessOf(args)?.role === 'holder' && uidOf(candidate) === uid) return true;
    }
    if (below < depth) level = childrenOf(level);
  }
  return false;
}

/** The processes whose parent is one of `parents`. */
function childrenOf(parents: number[]): number[] {
  const wanted = new Set(parents);
  return [...readProcessTable().values()].filter((info) => wanted.has(info.ppid)).map((info) => info.pid);
}

/** The uid the agent runs as (and so its own slots). */
function agentUid(): number {
  return process.getuid?.() ?? -1;
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
