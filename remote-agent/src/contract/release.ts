import { z } from 'zod';

/**
 * What the panel's deploy and the host's side of it say to each other over SSH. The host side is two programs:
 * `resources/deploy/host.sh` (POSIX sh, runs before Node is there: detect, install-node, unpack) and the agent's own
 * `slotdeck-agent release ...` commands (activate, rollback, status, uninstall). Both answer in JSON: `detect` and
 * `release status` print one object; the long commands print one JSON object per line (ReleaseLine), so the panel
 * can show each step while it runs. Layout on the host (the agent account's home):
 *
 *   ~/.slotdeck-agent/releases/<version>/   an unpacked agent tarball with its node_modules
 *   ~/.slotdeck-agent/current -> releases/<version>
 *   ~/.slotdeck-agent/history.json          activated versions, newest last (rollback goes one back)
 *   ~/.slotdeck-agent/node/<version>/       Node from its official tarball, where the distribution's is too old
 *   ~/.slotdeck-agent/bin/slotdeck-agent    a wrapper: the right node, the current release's CLI
 *   ~/.slotdeck-agent/backups/              the agent's database, copied before each activation
 */

export const RELEASE_ROOT_NAME = '.slotdeck-agent';
/** The PM2 process the agent itself runs as, in its own PM2 daemon (beside its slot-* processes). */
export const AGENT_PM2_NAME = 'slotdeck-agent';
/** How many releases stay on the host (the current one and the ones to roll back to). */
export const RELEASES_KEPT = 3;
/** Versions are semver-like; they name folders, so nothing else is allowed in them. */
export const ReleaseVersion = z.string().regex(/^\d{1,4}\.\d{1,4}\.\d{1,6}(-[0-9A-Za-z.-]{1,40})?$/, {
  message: 'must be a version like 1.2.3',
});

/** `sh host.sh detect`. */
export const HostFacts = z.object({
  os: z.object({ id: z.string(), versionId: z.string(), prettyName: z.string() }),
  /** Node's names: x64, arm64 (from uname -m). */
  arch: z.string(),
  user: z.string(),
  home: z.string(),
  node: z.object({ path: z.string(), version: z.string() }).nullable(),
  npm: z.boolean(),
  dtach: z.boolean(),
  /** A C toolchain (cc, make, python3), needed only if a native module must compile. */
  buildTools: z.boolean(),
  /** systemd is the init system (/run/systemd/system exists). */
  systemd: z.boolean(),
  /** `sudo -n true` works for the login user: the deploy can install packages and set up slot accounts. */
  sudo: z.boolean(),
  packageManager: z.enum(['apt', 'dnf', 'yum', 'apk']).nullable(),
  /** The agent already on the host (any account the deploy used before, as far as this user can see). */
  agent: z.object({ root: z.string(), current: z.string().nullable(), account: z.string() }).nullable(),
});
export type HostFacts = z.infer<typeof HostFacts>;

export const StepState = z.enum(['running', 'done', 'failed', 'skipped']);
/** One line of `release activate|rollback|uninstall`: a step's change, a note, or the result (the last line). */
export const ReleaseLine = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('step'),
    step: z.string(),
    label: z.string(),
    state: StepState,
    detail: z.string().optional(),
  }),
  z.object({ kind: z.literal('note'), text: z.string() }),
  z.object({
    kind: z.literal('result'),
    outcome: z.enum(['activated', 'rolled-back', 'failed', 'uninstalled']),
    /** The version running when the command ended (null: none). */
    version: ReleaseVersion.nullable(),
    message: z.string(),
  }),
]);
export type ReleaseLine = z.infer<typeof ReleaseLine>;

/** `slotdeck-agent release status`. */
export const ReleaseStatus = z.object({
  root: z.string(),
  current: ReleaseVersion.nullable(),
  /** The release Rollback would go back to. */
  previous: ReleaseVersion.nullable(),
  releases: z.array(z.object({ version: ReleaseVersion, installedAt: z.string() })),
  agent: z.object({ running: z.boolean(), pid: z.number().nullable(), version: z.string().nullable() }),
  /** `isolated`: slots run as accounts of their own (setup-host ran); `single-user`: as the agent's account. */
  mode: z.enum(['isolated', 'single-user']),
  boot: z.enum(['systemd', 'none']),
});
export type ReleaseStatus = z.infer<typeof ReleaseStatus>;
