import { z } from 'zod';
import { UserId } from './users.js';

export const SLOT_ID_PATTERN = /^[a-z0-9]{10}$/;
export const SlotId = z
  .string()
  .regex(SLOT_ID_PATTERN, { message: 'must be a slot id: 10 lowercase letters or digits, as returned on create' });
export type SlotId = z.infer<typeof SlotId>;

export const SlotName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
  message: "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
});

const Argument = z
  .string()
  .max(4096, { message: 'must be at most 4096 characters' })
  .refine((s) => !s.includes('\0'), { message: 'must not contain NUL characters' });
const Arguments = z.array(Argument).max(256, { message: 'must have at most 256 arguments' });

/** What a slot runs in its terminal. `shell` is the host user's login shell. */
export const SlotCommand = z.discriminatedUnion('preset', [
  z.strictObject({
    preset: z.literal('shell'),
    /** Absolute path of the shell; the agent user's login shell when omitted. */
    shell: z.string().startsWith('/', { message: 'must be an absolute path such as /bin/bash' }).optional(),
  }),
  z.strictObject({ preset: z.literal('claudebox'), args: Arguments.optional() }),
  z.strictObject({
    preset: z.literal('docker-exec'),
    container: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, {
      message: "must be a Docker container name (letters, digits, '_', '.', '-')",
    }),
    shell: z.string().min(1).max(256).optional(),
  }),
  z.strictObject({
    preset: z.literal('custom'),
    command: z
      .string()
      .min(1, { message: 'must name a program' })
      .max(4096)
      .refine((s) => !s.includes('\0'), { message: 'must not contain NUL characters' }),
    args: Arguments.optional(),
  }),
]);
export type SlotCommand = z.infer<typeof SlotCommand>;

/** Variables every slot gets from the agent; a slot's own env cannot replace them. */
export const RESERVED_ENV_KEYS = ['HOME', 'CLAUDE_CONFIG_DIR', 'SLOTDECK_SLOT_ID', 'SLOTDECK_SLOT_NAME'] as const;

export const SlotEnv = z
  .record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, {
      message: 'environment variable names are letters, digits and _, not starting with a digit',
    }),
    z
      .string()
      .max(32768, { message: 'must be at most 32 KiB' })
      .refine((s) => !s.includes('\0'), { message: 'must not contain NUL characters' }),
  )
  .refine((env) => Object.keys(env).length <= 256, { message: 'at most 256 variables' })
  .superRefine((env, ctx) => {
    for (const key of RESERVED_ENV_KEYS) {
      if (key in env) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${key} is set by the agent for every slot; remove it from env`,
        });
      }
    }
  });

export const TerminalSize = z.strictObject({
  cols: z.int().min(2).max(1000),
  rows: z.int().min(1).max(500),
});
export type TerminalSize = z.infer<typeof TerminalSize>;

/** `builtin`: the agent's own ttyd-protocol terminal over a dtach session. `ttyd`: a real ttyd running tmux. */
export const TerminalBackend = z.enum(['builtin', 'ttyd']);
export type TerminalBackend = z.infer<typeof TerminalBackend>;

export const CreateSlotBody = z
  .strictObject({
    name: SlotName,
    command: SlotCommand.default({ preset: 'shell' }),
    env: SlotEnv.default({}),
    /** Absolute path of an existing directory; a fresh folder under the agent's data dir when omitted. */
    workDir: z.string().startsWith('/', { message: 'must be an absolute path' }).max(1024).optional(),
    /** The slot is restarted when its processes together use more resident memory than this. */
    memoryLimitMb: z.int().min(16).max(1_048_576).nullable().default(null),
    terminal: TerminalBackend.default('builtin'),
    size: TerminalSize.default({ cols: 120, rows: 32 }),
    /** Start right away (the default) or only register the slot. */
    start: z.boolean().default(true),
    /** The user the slot belongs to. */
    ownerId: UserId.nullable().default(null),
    /**
     * Metered: the agent issues an API key for the owner and sets ANTHROPIC_BASE_URL (its gateway) and
     * ANTHROPIC_API_KEY in the slot's environment, so that Claude Code in the slot is authenticated, limited and metered.
     */
    metered: z.boolean().default(false),
  })
  .refine((slot) => !slot.metered || slot.ownerId !== null, {
    message: 'a metered slot needs an owner: set ownerId to the user whose key and quotas it uses',
    path: ['ownerId'],
  });
export type CreateSlotBody = z.input<typeof CreateSlotBody>;

/**
 * What an edit may change; fields left out stay as they are. A change of command, env or metering (and, on hosts
 * that run each slot as its own account, of the memory limit, a cgroup limit set at start) needs the program to start
 * again: a running slot is restarted to apply it; a stopped or failed one gets it at its next start.
 */
export const UpdateSlotBody = z
  .strictObject({
    name: SlotName.optional(),
    command: SlotCommand.optional(),
    /** The slot's whole environment (it replaces the old one). */
    env: SlotEnv.optional(),
    memoryLimitMb: z.int().min(16).max(1_048_576).nullable().optional(),
    ownerId: UserId.nullable().optional(),
    metered: z.boolean().optional(),
    /**
     * With a new ownerId: give the slot a fresh home (the old one, with the previous owner's Claude login and
     * transcripts, is deleted). An owner change without it is refused.
     */
    resetHome: z.literal(true).optional(),
  })
  .refine((body) => Object.keys(body).length > 0, {
    message: 'nothing to change: give at least one of name, command, env, memoryLimitMb, ownerId, metered',
  })
  .refine((body) => body.resetHome === undefined || body.ownerId !== undefined, {
    message: 'resetHome goes with a new ownerId: send both, or leave resetHome out',
    path: ['resetHome'],
  });
export type UpdateSlotBody = z.input<typeof UpdateSlotBody>;

/** `restarting`: the program keeps ending and PM2 starts it again; `crashLoop` says how often and how it ended. */
export const SlotState = z.enum(['starting', 'running', 'restarting', 'stopped', 'failed']);
export type SlotState = z.infer<typeof SlotState>;

export const Slot = z.object({
  id: SlotId,
  name: z.string(),
  command: SlotCommand,
  /** The program and arguments the slot runs, as resolved on this host. */
  argv: z.array(z.string()),
  env: z.record(z.string(), z.string()),
  workDir: z.string(),
  homeDir: z.string(),
  memoryLimitMb: z.number().nullable(),
  terminal: TerminalBackend,
  desiredState: z.enum(['running', 'stopped']),
  state: SlotState,
  failure: z.object({ reason: z.string(), at: z.string() }).nullable(),
  /**
   * While the slot is `restarting`: how often its program ended within the crash-loop window since it was last
   * started (the slot fails once `exits` passes `limit`), and how it ended last ("sh exited with code 127 (command
   * not found)"). Absent from older agents.
   */
  crashLoop: z
    .object({ exits: z.number(), limit: z.number(), windowSeconds: z.number(), lastExit: z.string() })
    .nullable()
    .optional(),
  /** Process id of the session holder that PM2 supervises. */
  pid: z.number().nullable(),
  /** Process id of the slot's own program (the shell), inside the holder's terminal. */
  programPid: z.number().nullable(),
  uptimeMs: z.number().nullable(),
  /** Automatic restarts after the program ended or crashed (manual restarts are not counted). */
  restarts: z.number(),
  /** CPU use of all the slot's processes, percent of one core, over the last sampling period. */
  cpuPercent: z.number().nullable(),
  /** Resident memory of all the slot's processes, in bytes. */
  memoryBytes: z.number().nullable(),
  viewers: z.object({ writable: z.number(), readOnly: z.number() }),
  size: TerminalSize,
  lastActivityAt: z.string().nullable(),
  ownerId: z.string().nullable(),
  /**
   * The Unix account the slot's program runs as on a host set up for isolation (`setup-host`); null where slots run
   * as the agent's own user. Absent from older agents.
   */
  account: z.string().nullable().optional(),
  /** For a metered slot: the key it uses (never the key itself). */
  metered: z.object({ keyId: z.string(), keyPrefix: z.string() }).nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type Slot = z.infer<typeof Slot>;

export const SlotList = z.object({ slots: z.array(Slot) });

export const SlotIdParams = z.strictObject({ id: SlotId });

export const ListSlotsQuery = z.strictObject({
  state: SlotState.optional(),
  ownerId: UserId.optional(),
  name: SlotName.optional(),
});

export const DeleteSlotQuery = z.strictObject({
  /** `keep` (the default) leaves the work directory and home on disk; `remove` deletes the ones the agent made. */
  workDir: z.enum(['keep', 'remove']).default('keep'),
});

export const DeleteSlotResult = z.object({
  id: SlotId,
  deleted: z.literal(true),
  removedPaths: z.array(z.string()),
  keptPaths: z.array(z.string()),
});

export const TerminalMode = z.enum(['writable', 'read-only']);
export type TerminalMode = z.infer<typeof TerminalMode>;

/**
 * A web page's origin as browsers send it in `Origin`: `http(s)://host[:port]`, or `app://slotdeck` (the Electron
 * panel's page). `file://` is still taken from older panels, but such a ticket only opens from `Origin: file://`:
 * `null` is never accepted (any sandboxed or data: page sends it).
 */
export const PageOrigin = z
  .string()
  .max(255)
  .refine(
    (value) =>
      value === 'app://slotdeck' ||
      value === 'file://' ||
      (/^https?:\/\/[^/?#@\s]+$/.test(value) && URL.canParse(value) && new URL(value).origin === value),
    { message: 'must be a page origin such as http://127.0.0.1:5173 (scheme, host and port; no path or trailing /)' },
  );

/**
 * `origin`: the origin of the page that will open the terminal. The agent then refuses the WebSocket from any other
 * Origin, and without one. Non-browser clients (the CLI's `attach`) leave it out and send no Origin.
 */
export const CreateTicketBody = z.strictObject({
  mode: TerminalMode.default('writable'),
  origin: PageOrigin.optional(),
});

export const TerminalTicket = z.object({
  ticket: z.string(),
  slotId: SlotId,
  mode: TerminalMode,
  expiresAt: z.string(),
  /** Path of the terminal WebSocket on the admin listener, the ticket included. */
  path: z.string(),
});
export type TerminalTicket = z.infer<typeof TerminalTicket>;

export const SlotEventKind = z.enum([
  'created',
  'started',
  'stopped',
  'restarted',
  'exited',
  'memory-limit',
  'failed',
  'orphan-stopped',
  /** A metered slot's gateway key was issued or rotated. */
  'metering',
  /** The slot moved to an account of its own (the host was set up for isolation after it was made). */
  'isolated',
  /** The admin changed the slot's settings (what changed is in the message). */
  'edited',
]);

export const SlotEvent = z.object({
  id: z.number(),
  slotId: SlotId,
  at: z.string(),
  kind: SlotEventKind,
  message: z.string(),
});
export type SlotEvent = z.infer<typeof SlotEvent>;

export const SlotEventsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

export const SlotEventList = z.object({ events: z.array(SlotEvent) });
