/**
 * The IPC contract of EC2 (AWS accounts, instances, launching), deploying the agent, and idle auto-stop. Merged into
 * `ipcContract` in ./contract.ts; kept apart so each domain's schemas sit together.
 */
import { z } from 'zod';
import { IdlePolicy, IdleStatus, ReleaseStatus } from '../../../remote-agent/src/contract/index';

export type { IdlePolicy, IdleStatus, ReleaseStatus } from '../../../remote-agent/src/contract/index';

const HostId = z.string().regex(/^[a-z0-9-]{1,40}$/, { message: 'must be a host id' });
const errorShape = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.string()).optional(),
});

export const AwsRegion = z
  .string()
  .regex(/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/, { message: 'must be a region such as eu-west-1' });
export const AwsAccountId = z.string().regex(/^aws-[a-z0-9]{10}$/, { message: 'must be an AWS account id' });
export const Ec2InstanceId = z.string().regex(/^i-[0-9a-f]{8,17}$/, { message: 'must be an instance id (i-…)' });
const profileName = z
  .string()
  .trim()
  .min(1, { message: 'pick a profile' })
  .max(128)
  .regex(/^[A-Za-z0-9_.+=,@-]+$/, { message: 'must be a profile name from ~/.aws/config' });

/** Where an account's credentials come from. A pasted key goes to the keychain and never comes back. */
export const AwsCredentialsInput = z.discriminatedUnion('source', [
  z.strictObject({ source: z.literal('profile'), profile: profileName }),
  z.strictObject({ source: z.literal('environment') }),
  z.strictObject({
    source: z.literal('access-key'),
    accessKeyId: z
      .string()
      .trim()
      .regex(/^(AKIA|ASIA)[A-Z0-9]{16}$/, {
        message: 'an access key id is 20 characters and starts with AKIA or ASIA',
      }),
    secretAccessKey: z
      .string()
      .trim()
      .min(16, { message: 'paste the whole secret access key (40 characters)' })
      .max(128),
    sessionToken: z.string().trim().max(4096).optional(),
  }),
]);
export type AwsCredentialsInput = z.input<typeof AwsCredentialsInput>;

export const AwsAccount = z.object({
  id: AwsAccountId,
  name: z.string(),
  source: z.enum(['profile', 'environment', 'access-key']),
  profile: z.string().nullable(),
  /** A pasted key's id with the middle hidden (AKIA…WXYZ); null for the other sources. */
  accessKeyHint: z.string().nullable(),
  regions: z.array(z.string()),
  createdAt: z.string(),
});
export type AwsAccount = z.infer<typeof AwsAccount>;

export const AwsProfiles = z.object({
  profiles: z.array(
    z.object({
      name: z.string(),
      kind: z.enum(['static', 'sso', 'role', 'process', 'other']),
      region: z.string().nullable(),
    }),
  ),
  /** AWS_ACCESS_KEY_ID (or AWS_PROFILE) is set in the panel's environment. */
  environment: z.boolean(),
  configFile: z.string(),
  credentialsFile: z.string(),
});
export type AwsProfiles = z.infer<typeof AwsProfiles>;

export const Ec2State = z.enum(['pending', 'running', 'shutting-down', 'terminated', 'stopping', 'stopped']);
export type Ec2State = z.infer<typeof Ec2State>;

export const InstanceRef = z.strictObject({ accountId: AwsAccountId, region: AwsRegion, instanceId: Ec2InstanceId });
export type InstanceRef = z.infer<typeof InstanceRef>;

export const Ec2Instance = z.object({
  accountId: AwsAccountId,
  region: z.string(),
  instanceId: z.string(),
  name: z.string().nullable(),
  state: Ec2State,
  type: z.string(),
  zone: z.string().nullable(),
  publicIp: z.string().nullable(),
  privateIp: z.string().nullable(),
  publicDns: z.string().nullable(),
  launchTime: z.string().nullable(),
  imageId: z.string().nullable(),
  /** EC2's PlatformDetails (e.g. "Linux/UNIX"). */
  platform: z.string().nullable(),
  keyName: z.string().nullable(),
  securityGroups: z.array(z.object({ id: z.string(), name: z.string() })),
  tags: z.record(z.string(), z.string()),
  /** The SSH user the image's family uses (ec2-user, ubuntu, admin), a suggestion the admin can change. */
  suggestedUser: z.string(),
  /** Host profiles linked to this instance. */
  linkedHostIds: z.array(z.string()),
  /** The instance's status checks, when it runs (null when not asked or not running). */
  statusChecks: z.enum(['ok', 'initializing', 'impaired', 'insufficient-data', 'not-applicable']).nullable(),
});
export type Ec2Instance = z.infer<typeof Ec2Instance>;

export const InstanceAction = z.enum(['start', 'stop', 'reboot']);
export type InstanceAction = z.infer<typeof InstanceAction>;

export const LaunchImage = z.enum(['al2023', 'ubuntu-24.04']);
export type LaunchImage = z.infer<typeof LaunchImage>;

export const LaunchInput = z.strictObject({
  accountId: AwsAccountId,
  region: AwsRegion,
  /** The host profile's name, the instance's Name tag and its `slotdeck` tag. */
  name: z
    .string()
    .trim()
    .min(1, { message: 'give the host a name' })
    .max(64, { message: 'at most 64 characters' })
    .regex(/^[A-Za-z0-9 ._-]+$/, { message: 'letters, digits, spaces and . _ - only' }),
  instanceType: z
    .string()
    .trim()
    .regex(/^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$/, { message: 'must be an instance type such as t3.medium' }),
  image: LaunchImage,
  diskGb: z
    .int({ message: 'must be a whole number of GB' })
    .min(8, { message: 'at least 8 GB' })
    .max(2048, { message: 'at most 2048 GB' }),
  keyPair: z.discriminatedUnion('mode', [
    z.strictObject({ mode: z.literal('existing'), name: z.string().trim().min(1).max(255) }),
    z.strictObject({
      mode: z.literal('create'),
      name: z
        .string()
        .trim()
        .min(1)
        .max(255)
        .regex(/^[A-Za-z0-9 ._-]+$/, { message: 'letters, digits, spaces and . _ - only' }),
    }),
  ]),
  /** For an existing key pair: the private key file on this computer (a new pair's key goes to the keychain). */
  keyPath: z.string().trim().max(4096).optional(),
  /** Idle auto-stop after this many minutes (null: off). */
  idleStopMinutes: z.int().min(1).max(10080).nullable(),
});
export type LaunchInput = z.input<typeof LaunchInput>;

export const LaunchOptions = z.object({
  images: z.array(
    z.object({
      key: LaunchImage,
      label: z.string(),
      imageId: z.string(),
      sshUser: z.string(),
      architecture: z.string(),
    }),
  ),
  keyPairs: z.array(z.string()),
  instanceTypes: z.array(z.string()),
  /** The admin's public address as AWS sees it (the security group lets SSH in from it only). */
  myAddress: z.string().nullable(),
});
export type LaunchOptions = z.infer<typeof LaunchOptions>;

export const AwsProgress = z.object({
  accountId: z.string(),
  region: z.string(),
  /** Null before RunInstances gave the new instance its id. */
  instanceId: z.string().nullable(),
  phase: z.enum([
    'requested',
    'pending',
    'running',
    'status-checks',
    'ready',
    'stopping',
    'stopped',
    'rebooting',
    'failed',
    'cancelled',
  ]),
  message: z.string(),
  at: z.string(),
});
export type AwsProgress = z.infer<typeof AwsProgress>;

export const SshAccess = z.object({
  /** null: could not tell (no address, or the groups could not be read). */
  allowed: z.boolean().nullable(),
  myAddress: z.string().nullable(),
  detail: z.string(),
});
export type SshAccess = z.infer<typeof SshAccess>;

export const DeployAction = z.enum(['deploy', 'upgrade', 'rollback', 'uninstall']);
export type DeployAction = z.infer<typeof DeployAction>;

export const DeployStep = z.object({
  id: z.string(),
  label: z.string(),
  state: z.enum(['pending', 'running', 'done', 'failed', 'skipped', 'cancelled']),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  /** One line on what happened (or why it was skipped). */
  detail: z.string().nullable(),
  /** The step's output (its last 8 KB), shown when it failed. */
  output: z.string().nullable(),
  progress: z.object({ done: z.number(), total: z.number() }).nullable(),
});
export type DeployStep = z.infer<typeof DeployStep>;

export const DeployJob = z.object({
  id: z.string(),
  hostId: z.string(),
  action: DeployAction,
  state: z.enum(['running', 'succeeded', 'failed', 'cancelled', 'rolled-back']),
  steps: z.array(DeployStep),
  /** What the admin should read when it ended (why it failed, what was rolled back). */
  message: z.string().nullable(),
  error: errorShape.nullable(),
  fromVersion: z.string().nullable(),
  toVersion: z.string().nullable(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
});
export type DeployJob = z.infer<typeof DeployJob>;

export const DeployStatus = z.object({
  /** The agent this panel bundles, and the contract range it speaks. */
  bundled: z.object({
    version: z.string(),
    contractVersion: z.number(),
    minContract: z.number(),
    maxContract: z.number(),
  }),
  /** The host's releases (null: no agent was deployed there, or the host could not be asked). */
  host: ReleaseStatus.nullable(),
  lastJob: DeployJob.nullable(),
});
export type DeployStatus = z.infer<typeof DeployStatus>;

const ok = z.object({ ok: z.literal(true) });
const nothing = z.strictObject({});

/** Host settings that link a profile to an EC2 instance (added to Host in ./contract.ts). */
export const HostInstanceLink = InstanceRef.nullable();

export const cloudIpcContract = {
  'aws:profiles': { input: nothing, output: AwsProfiles },
  'aws:accounts': { input: nothing, output: z.object({ accounts: z.array(AwsAccount) }) },
  'aws:account-create': {
    input: z.strictObject({
      name: z.string().trim().min(1, { message: 'give the account a name' }).max(64),
      regions: z.array(AwsRegion).min(1, { message: 'choose at least one region' }).max(32),
      credentials: AwsCredentialsInput,
    }),
    output: AwsAccount,
  },
  'aws:account-update': {
    input: z.strictObject({
      id: AwsAccountId,
      changes: z.strictObject({
        name: z.string().trim().min(1).max(64).optional(),
        regions: z.array(AwsRegion).min(1, { message: 'choose at least one region' }).max(32).optional(),
        credentials: AwsCredentialsInput.optional(),
      }),
    }),
    output: AwsAccount,
  },
  'aws:account-remove': { input: z.strictObject({ id: AwsAccountId }), output: ok },
  'aws:instances': {
    input: z.strictObject({ accountId: AwsAccountId }),
    output: z.object({
      instances: z.array(Ec2Instance),
      /** Regions that could not be listed, each with why (the others are still shown). */
      regionErrors: z.array(z.object({ region: z.string(), code: z.string(), message: z.string() })),
      fetchedAt: z.string(),
    }),
  },
  'aws:instance-action': { input: InstanceRef.extend({ action: InstanceAction }), output: Ec2Instance },
  'aws:launch-options': {
    input: z.strictObject({ accountId: AwsAccountId, region: AwsRegion }),
    output: LaunchOptions,
  },
  'aws:launch': {
    input: LaunchInput,
    output: z.object({ instance: Ec2Instance, hostId: HostId }),
  },
  'aws:link-host': { input: z.strictObject({ hostId: HostId, instance: HostInstanceLink }), output: ok },
  'aws:ssh-access': { input: z.strictObject({ hostId: HostId }), output: SshAccess },
  'hosts:start-and-connect': { input: z.strictObject({ id: HostId }), output: ok },
  'deploy:status': { input: z.strictObject({ hostId: HostId }), output: DeployStatus },
  'deploy:run': {
    input: z.strictObject({
      hostId: HostId,
      action: DeployAction,
      /** Uninstall: also stop and delete every slot, the users, keys and usage (the agent's whole data dir). */
      deleteData: z.boolean().default(false),
    }),
    output: DeployJob,
  },
  'deploy:cancel': { input: z.strictObject({ hostId: HostId }), output: ok },
  'idle:status': { input: z.strictObject({ hostId: HostId }), output: IdleStatus },
  'idle:set': { input: z.strictObject({ hostId: HostId, policy: IdlePolicy }), output: IdleStatus },
  'idle:keep-awake': {
    input: z.strictObject({ hostId: HostId, minutes: z.int().min(1).max(1440).default(60) }),
    output: IdleStatus,
  },
} as const;

export const cloudEventContract = {
  'aws:progress': AwsProgress,
  'deploy:progress': z.object({ hostId: z.string(), job: DeployJob }),
} as const;
