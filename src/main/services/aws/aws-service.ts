import { randomBytes, randomUUID } from 'node:crypto';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateKeyPairCommand,
  CreateSecurityGroupCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  DescribeKeyPairsCommand,
  DescribeRegionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeVpcsCommand,
  EC2Client,
  paginateDescribeInstances,
  paginateDescribeInstanceStatus,
  RebootInstancesCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  waitUntilInstanceRunning,
  waitUntilInstanceStatusOk,
  waitUntilInstanceStopped,
  type Filter,
  type Instance,
  type InstanceStatus,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type {
  AwsAccount,
  AwsCredentialsInput,
  AwsProfiles,
  AwsProgress,
  Ec2Instance,
  Ec2State,
  InstanceAction,
  InstanceRef,
  LaunchImage,
  LaunchOptions,
  SshAccess,
} from '../../../shared/ipc/contract-cloud';
import type { IpcParsedInput } from '../../../shared/ipc/contract';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';
import type { EventBus } from '../../ipc/events';
import type { Logger } from '../../log';
import { AwsAccountNameTakenError, type AwsAccountRow, type HostRow, type Store } from '../db/store';
import type { HostService } from '../hosts/hosts';
import type { SecretVault } from '../secrets/vault';
import { checkPrivateKey } from '../ssh/tunnel';
import {
  accessKeyHint,
  accessKeySecret,
  credentialsFor,
  listProfiles,
  type CredentialsProvider,
  type StaticKey,
} from './credentials';
import { awsError, type AwsCallContext } from './errors';
import { savePendingIdle } from './pending-idle';
import { widerRule } from './security-group';
import {
  architectureOf,
  IMAGE_LABELS,
  imageParameter,
  ipv4InCidr,
  securityGroupName,
  SSH_USER_TAG,
  suggestedUser,
} from './images';

export const DEFAULT_CHECKIP_URL = 'https://checkip.amazonaws.com';
const LISTED_STATES = ['pending', 'running', 'shutting-down', 'stopping', 'stopped'];
const INSTANCE_TYPES = ['t3.small', 't3.medium', 't3.large', 'm7i.large', 't4g.small', 't4g.medium', 'm7g.large'];

export interface AwsServiceOptions {
  store: Store;
  vault: SecretVault;
  events: EventBus;
  hosts: HostService;
  log: Logger;
  env: NodeJS.ProcessEnv;
  /** Every EC2 and SSM client talks to this endpoint instead of AWS's (tests: the stand-in). */
  endpoint?: string;
  /** Where the admin's public address is looked up (AWS's checkip by default). */
  checkIpUrl?: string;
  /** Waiter pacing in seconds (AWS's defaults poll every 15 s; tests poll faster). */
  waiter?: { minDelay: number; maxDelay: number };
  /** Attempts per call, retries of throttling and network errors included (the SDK's default is 3). */
  maxAttempts?: number;
  /** Instances asked for per DescribeInstances page (default 100). */
  pageSize?: number;
}

/** Filters of an instance listing (any combination). */
export interface InstanceFilters {
  regions?: string[];
  states?: string[];
  tags?: Record<string, string>;
  instanceIds?: string[];
}

type WaitKind = 'running' | 'status-ok' | 'stopped';

/**
 * AWS accounts and their EC2 instances, for the panel's main process: credentials from the standard chain or a key
 * kept in the vault, instance listings across regions, start/stop/reboot with the SDK's waiters (announced as
 * `aws:progress`), launching a host, and the address of a linked host at connect.
 */
export class AwsService {
  private readonly clients = new Map<string, { ec2: EC2Client; ssm: SSMClient }>();
  private readonly images = new Map<
    string,
    { name: string | null; ownerId: string | null; rootDevice: string | null }
  >();

  constructor(private readonly options: AwsServiceOptions) {}

  // ------------------------------------------------------------------ accounts

  profiles(): AwsProfiles {
    return listProfiles(this.options.env);
  }

  accounts(): AwsAccount[] {
    return this.options.store.listAwsAccounts().map(view);
  }

  private account(id: string): AwsAccountRow {
    const row = this.options.store.getAwsAccount(id);
    if (!row)
      throw new IpcError(
        IpcErrorCode.AWS_ACCOUNT_NOT_FOUND,
        'That AWS account was removed. Pick another one or add it again.',
      );
    return row;
  }

  async createAccount(input: IpcParsedInput<'aws:account-create'>, signal?: AbortSignal): Promise<AwsAccount> {
    const id = `aws-${randomBytes(5).toString('hex')}`;
    const draft = { id, name: input.name, ...sourceOf(input.credentials) };
    this.checkNameFree(input.name, null);
    await this.checkCredentials(draft, input.credentials, input.regions[0]!, signal);
    if (input.credentials.source === 'access-key') await this.keepKey(id, input.credentials);
    try {
      return view(this.options.store.insertAwsAccount({ ...draft, regions: input.regions }));
    } catch (error) {
      await this.options.vault.delete(accessKeySecret(id));
      throw error instanceof AwsAccountNameTakenError ? nameTaken(input.name) : error;
    }
  }

  async updateAccount(
    id: string,
    changes: IpcParsedInput<'aws:account-update'>['changes'],
    signal?: AbortSignal,
  ): Promise<AwsAccount> {
    const current = this.account(id);
    if (changes.name) this.checkNameFree(changes.name, id);
    if (changes.credentials) {
      const source = sourceOf(changes.credentials);
      const region = changes.regions?.[0] ?? current.regions[0] ?? 'us-east-1';
      await this.checkCredentials({ id, name: current.name, ...source }, changes.credentials, region, signal);
      if (changes.credentials.source === 'access-key') await this.keepKey(id, changes.credentials);
      else await this.options.vault.delete(accessKeySecret(id));
      this.options.store.updateAwsAccount(id, source);
    }
    try {
      this.options.store.updateAwsAccount(id, { name: changes.name, regions: changes.regions });
    } catch (error) {
      throw error instanceof AwsAccountNameTakenError ? nameTaken(changes.name ?? '') : error;
    }
    this.dropClients(id);
    return view(this.account(id));
  }

  async removeAccount(id: string): Promise<void> {
    this.account(id);
    this.options.store.deleteAwsAccount(id);
    await this.options.vault.delete(accessKeySecret(id));
    this.dropClients(id);
    this.options.events.emit('hosts:changed', {});
  }

  private checkNameFree(name: string, except: string | null): void {
    const taken = this.options.store
      .listAwsAccounts()
      .some((a) => a.id !== except && a.name.toLowerCase() === name.toLowerCase());
    if (taken) throw nameTaken(name);
  }

  /** Credentials are checked once, when added or changed: DescribeRegions answers for any valid key. */
  private async checkCredentials(
    account: Pick<AwsAccountRow, 'id' | 'name' | 'source' | 'profile'>,
    credentials: AwsCredentialsInput,
    region: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const provider: CredentialsProvider =
      credentials.source === 'access-key'
        ? () => Promise.resolve(staticKey(credentials))
        : credentialsFor(account, this.options.vault, this.options.env, this.options.endpoint);
    const client = this.makeEc2(region, provider);
    try {
      await this.send({ action: 'ec2:DescribeRegions', account: account.name, region, profile: account.profile }, () =>
        client.send(new DescribeRegionsCommand({}), { abortSignal: signal }),
      );
    } finally {
      client.destroy();
    }
  }

  private async keepKey(
    id: string,
    credentials: Extract<AwsCredentialsInput, { source: 'access-key' }>,
  ): Promise<void> {
    await this.options.vault.set(accessKeySecret(id), JSON.stringify(staticKey(credentials)));
  }

  // ------------------------------------------------------------------ clients

  private makeEc2(region: string, credentials: CredentialsProvider): EC2Client {
    return new EC2Client({
      region,
      credentials,
      ...(this.options.endpoint ? { endpoint: this.options.endpoint } : {}),
      ...(this.options.maxAttempts ? { maxAttempts: this.options.maxAttempts } : {}),
    });
  }

  private client(account: AwsAccountRow, region: string): { ec2: EC2Client; ssm: SSMClient } {
    const key = `${account.id}/${region}`;
    let clients = this.clients.get(key);
    if (!clients) {
      const credentials = credentialsFor(account, this.options.vault, this.options.env, this.options.endpoint);
      clients = {
        ec2: this.makeEc2(region, credentials),
        ssm: new SSMClient({
          region,
          credentials,
          ...(this.options.endpoint ? { endpoint: this.options.endpoint } : {}),
        }),
      };
      this.clients.set(key, clients);
    }
    return clients;
  }

  private dropClients(accountId: string): void {
    for (const [key, clients] of this.clients)
      if (key.startsWith(`${accountId}/`)) {
        clients.ec2.destroy();
        clients.ssm.destroy();
        this.clients.delete(key);
      }
  }

  /** One AWS call, its error mapped to the panel's (the IAM action named). */
  private async send<T>(context: AwsCallContext, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw awsError(error, context);
    }
  }

  private context(account: AwsAccountRow, region: string, action: string): AwsCallContext {
    return { action, account: account.name, region, profile: account.source === 'profile' ? account.profile : null };
  }

  // ------------------------------------------------------------------ instances

  /** The account's instances in its regions (or the filters'), each region listed on its own: one failing does not hide the others. */
  async listInstances(
    accountId: string,
    filters: InstanceFilters = {},
    signal?: AbortSignal,
  ): Promise<{ instances: Ec2Instance[]; regionErrors: Array<{ region: string; code: string; message: string }> }> {
    const account = this.account(accountId);
    const regions = filters.regions ?? account.regions;
    const results = await Promise.allSettled(
      regions.map((region) => this.listRegion(account, region, filters, signal)),
    );
    const instances: Ec2Instance[] = [];
    const regionErrors: Array<{ region: string; code: string; message: string }> = [];
    results.forEach((result, index) => {
      if (result.status === 'fulfilled') instances.push(...result.value);
      else {
        const error = awsError(result.reason, this.context(account, regions[index]!, 'ec2:DescribeInstances'));
        regionErrors.push({ region: regions[index]!, code: error.code, message: error.message });
      }
    });
    return { instances, regionErrors };
  }

  private async listRegion(
    account: AwsAccountRow,
    region: string,
    filters: InstanceFilters,
    signal?: AbortSignal,
  ): Promise<Ec2Instance[]> {
    const { ec2 } = this.client(account, region);
    const awsFilters: Filter[] = [{ Name: 'instance-state-name', Values: filters.states ?? LISTED_STATES }];
    for (const [key, value] of Object.entries(filters.tags ?? {}))
      awsFilters.push({ Name: `tag:${key}`, Values: [value] });
    const found: Instance[] = [];
    const ids = filters.instanceIds;
    await this.send(this.context(account, region, 'ec2:DescribeInstances'), async () => {
      if (ids?.length) {
        // EC2 refuses MaxResults beside instance ids: one page.
        const page = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids, Filters: awsFilters }), {
          abortSignal: signal,
        });
        for (const reservation of page.Reservations ?? []) found.push(...(reservation.Instances ?? []));
        return;
      }
      for await (const page of paginateDescribeInstances(
        { client: ec2, pageSize: this.options.pageSize ?? 100, ...(signal ? { abortSignal: signal } : {}) },
        { Filters: awsFilters },
      ))
        for (const reservation of page.Reservations ?? []) found.push(...(reservation.Instances ?? []));
    });
    const statuses = await this.statusChecks(account, region, found, signal);
    await this.learnImages(account, region, found, signal);
    const hosts = this.options.store.listHosts();
    return found.map((instance) =>
      this.view(account, region, instance, statuses.get(instance.InstanceId ?? ''), hosts),
    );
  }

  private async statusChecks(
    account: AwsAccountRow,
    region: string,
    instances: Instance[],
    signal?: AbortSignal,
  ): Promise<Map<string, InstanceStatus>> {
    const running = instances.filter((i) => i.State?.Name === 'running').map((i) => i.InstanceId!);
    const statuses = new Map<string, InstanceStatus>();
    if (running.length === 0) return statuses;
    const { ec2 } = this.client(account, region);
    await this.send(this.context(account, region, 'ec2:DescribeInstanceStatus'), async () => {
      // At most 100 ids a call; each batch paged.
      for (let start = 0; start < running.length; start += 100) {
        for await (const page of paginateDescribeInstanceStatus(
          { client: ec2, ...(signal ? { abortSignal: signal } : {}) },
          { InstanceIds: running.slice(start, start + 100) },
        ))
          for (const status of page.InstanceStatuses ?? []) statuses.set(status.InstanceId!, status);
      }
    });
    return statuses;
  }

  /** Image names tell the SSH user; images do not change, so each is asked once. Best effort: without it, ec2-user. */
  private async learnImages(
    account: AwsAccountRow,
    region: string,
    instances: Instance[],
    signal?: AbortSignal,
  ): Promise<void> {
    const unknown = [...new Set(instances.map((i) => i.ImageId).filter((id): id is string => Boolean(id)))].filter(
      (id) => !this.images.has(`${region}/${id}`),
    );
    if (unknown.length === 0) return;
    try {
      const { ec2 } = this.client(account, region);
      const answer = await ec2.send(new DescribeImagesCommand({ ImageIds: unknown }), { abortSignal: signal });
      for (const image of answer.Images ?? [])
        this.images.set(`${region}/${image.ImageId}`, {
          name: image.Name ?? null,
          ownerId: image.OwnerId ?? null,
          rootDevice: image.RootDeviceName ?? null,
        });
    } catch (error) {
      this.options.log.warn(`could not read images in ${region}`, { code: (error as Error).name });
    }
    // Deregistered (or unreadable) images are not asked again.
    for (const id of unknown)
      if (!this.images.has(`${region}/${id}`))
        this.images.set(`${region}/${id}`, { name: null, ownerId: null, rootDevice: null });
  }

  private view(
    account: AwsAccountRow,
    region: string,
    instance: Instance,
    status: InstanceStatus | undefined,
    hosts: HostRow[],
  ): Ec2Instance {
    const tags = Object.fromEntries((instance.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    const image = this.images.get(`${region}/${instance.ImageId}`) ?? null;
    const state: Ec2State = instance.State?.Name ?? 'pending';
    return {
      accountId: account.id,
      region,
      instanceId: instance.InstanceId!,
      name: tags.Name ?? null,
      state,
      type: instance.InstanceType ?? 'unknown',
      zone: instance.Placement?.AvailabilityZone ?? null,
      publicIp: instance.PublicIpAddress ?? null,
      privateIp: instance.PrivateIpAddress ?? null,
      publicDns: instance.PublicDnsName || null,
      launchTime: instance.LaunchTime?.toISOString() ?? null,
      imageId: instance.ImageId ?? null,
      platform: instance.PlatformDetails ?? null,
      keyName: instance.KeyName ?? null,
      securityGroups: (instance.SecurityGroups ?? []).map((g) => ({ id: g.GroupId ?? '', name: g.GroupName ?? '' })),
      tags,
      suggestedUser: tags[SSH_USER_TAG] ?? suggestedUser(image),
      linkedHostIds: hosts
        .filter(
          (h) =>
            h.instanceAccountId === account.id && h.instanceRegion === region && h.instanceId === instance.InstanceId,
        )
        .map((h) => h.id),
      statusChecks: state === 'running' ? checksOf(status) : null,
    };
  }

  /** One instance as it is now. */
  async describe(ref: InstanceRef, signal?: AbortSignal): Promise<Ec2Instance> {
    const { instances, regionErrors } = await this.listInstances(
      ref.accountId,
      { regions: [ref.region], instanceIds: [ref.instanceId], states: [...LISTED_STATES, 'terminated'] },
      signal,
    );
    const error = regionErrors[0];
    if (error) throw new IpcError(error.code as IpcErrorCode, error.message);
    const instance = instances[0];
    if (!instance)
      throw new IpcError(
        IpcErrorCode.AWS_NOT_FOUND,
        `Instance ${ref.instanceId} is not in ${ref.region} any more. Link the host to another instance.`,
      );
    return instance;
  }

  // ------------------------------------------------------------------ start, stop, reboot

  async instanceAction(ref: InstanceRef & { action: InstanceAction }, signal: AbortSignal): Promise<Ec2Instance> {
    const account = this.account(ref.accountId);
    const { ec2 } = this.client(account, ref.region);
    const progress = this.progress(ref);
    const ids = { InstanceIds: [ref.instanceId] };
    try {
      if (ref.action === 'start') {
        progress('requested', `Starting ${ref.instanceId}…`);
        await this.sendChange(account, ref, 'ec2:StartInstances', () => ec2.send(new StartInstancesCommand(ids)));
        await this.waitReady(account, ref, signal, progress);
      } else if (ref.action === 'stop') {
        progress('requested', `Stopping ${ref.instanceId}…`);
        await this.sendChange(account, ref, 'ec2:StopInstances', () => ec2.send(new StopInstancesCommand(ids)));
        progress('stopping', 'Shutting down');
        await this.wait(account, ref, 'stopped', signal);
        progress('stopped', 'Stopped');
      } else {
        progress('requested', `Rebooting ${ref.instanceId}…`);
        await this.sendChange(account, ref, 'ec2:RebootInstances', () => ec2.send(new RebootInstancesCommand(ids)));
        // EC2 shows no reboot: the instance stays running and its status checks may well stay ok throughout, so
        // waiting for them would claim a restart that may not have happened yet. The request is all that is known.
        progress(
          'rebooting',
          'Reboot requested. AWS does not report a reboot’s progress: the instance stays “running” while its system restarts; SSH answers again once it is back (usually within a minute or two).',
        );
      }
    } catch (error) {
      throw this.failed(error, progress, signal, ref.action === 'stop' ? 'stopping' : 'starting');
    }
    return this.describe(ref);
  }

  /** Pending → running → status checks passed, each announced. */
  private async waitReady(
    account: AwsAccountRow,
    ref: InstanceRef,
    signal: AbortSignal,
    progress: ReturnType<AwsService['progress']>,
  ): Promise<void> {
    progress('pending', 'Pending');
    await this.wait(account, ref, 'running', signal);
    progress('running', 'Running');
    progress('status-checks', 'Waiting for the status checks');
    await this.wait(account, ref, 'status-ok', signal);
    progress('ready', 'Status checks passed');
  }

  private failed(
    error: unknown,
    progress: ReturnType<AwsService['progress']>,
    signal: AbortSignal,
    doing: string,
  ): IpcError {
    if (signal.aborted || (error instanceof IpcError && error.code === IpcErrorCode.IPC_CANCELLED)) {
      progress('cancelled', `Stopped waiting. The instance goes on ${doing} in AWS.`);
      return new IpcError(IpcErrorCode.IPC_CANCELLED, 'Cancelled.');
    }
    const mapped = error instanceof IpcError ? error : new IpcError(IpcErrorCode.AWS_FAILED, (error as Error).message);
    progress('failed', mapped.message);
    return mapped;
  }

  /** A state change call; IncorrectInstanceState says what state the instance is in now. */
  private async sendChange(
    account: AwsAccountRow,
    ref: InstanceRef,
    action: string,
    run: () => Promise<unknown>,
  ): Promise<void> {
    try {
      await this.send(this.context(account, ref.region, action), run);
    } catch (error) {
      if (!(error instanceof IpcError && error.code === IpcErrorCode.AWS_INSTANCE_STATE)) throw error;
      const state = await this.describe(ref).then(
        (instance) => instance.state,
        () => null,
      );
      const verb = action.replace('ec2:', '').replace('Instances', '').toLowerCase();
      throw new IpcError(
        IpcErrorCode.AWS_INSTANCE_STATE,
        state
          ? `${ref.instanceId} is ${state}, so it cannot ${verb === 'reboot' ? 'be rebooted' : verb} now. ${nextStep(state)}`
          : error.message,
        { state: state ?? 'unknown', instanceId: ref.instanceId },
      );
    }
  }

  /**
   * The SDK's waiter for `kind`. One direct call first: a waiter retries every error until its deadline, so a missing
   * permission would otherwise look like a long wait.
   */
  private async wait(account: AwsAccountRow, ref: InstanceRef, kind: WaitKind, signal: AbortSignal): Promise<void> {
    const { ec2 } = this.client(account, ref.region);
    const ids = { InstanceIds: [ref.instanceId] };
    const action = kind === 'status-ok' ? 'ec2:DescribeInstanceStatus' : 'ec2:DescribeInstances';
    const context = this.context(account, ref.region, action);
    await this.send(context, () =>
      kind === 'status-ok'
        ? ec2.send(new DescribeInstanceStatusCommand(ids), { abortSignal: signal })
        : ec2.send(new DescribeInstancesCommand(ids), { abortSignal: signal }),
    );
    const pace = this.options.waiter ?? { minDelay: 5, maxDelay: 15 };
    const config = {
      client: ec2,
      minDelay: pace.minDelay,
      maxDelay: pace.maxDelay,
      maxWaitTime: kind === 'status-ok' ? 15 * 60 : 10 * 60,
      abortSignal: signal,
    };
    try {
      if (kind === 'running') await waitUntilInstanceRunning(config, ids);
      else if (kind === 'stopped') await waitUntilInstanceStopped(config, ids);
      else await waitUntilInstanceStatusOk(config, ids);
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'AbortError' || signal.aborted) throw new IpcError(IpcErrorCode.IPC_CANCELLED, 'Cancelled.');
      const state = await this.describe(ref).then(
        (instance) => instance.state,
        () => 'unknown',
      );
      const goal = { running: 'running', stopped: 'stopped', 'status-ok': 'passing its status checks' }[kind];
      throw new IpcError(
        IpcErrorCode.AWS_INSTANCE_STATE,
        name === 'TimeoutError'
          ? `${ref.instanceId} was still ${state}, not ${goal}, after ${config.maxWaitTime / 60} minutes. Check it in the AWS console.`
          : `${ref.instanceId} went ${state} instead of ${goal}. ${nextStep(state)}`,
        { state, instanceId: ref.instanceId },
      );
    }
  }

  private progress(ref: { accountId: string; region: string; instanceId: string | null }) {
    return (phase: AwsProgress['phase'], message: string, instanceId?: string): void => {
      if (instanceId) ref.instanceId = instanceId;
      this.options.events.emit('aws:progress', {
        accountId: ref.accountId,
        region: ref.region,
        instanceId: ref.instanceId,
        phase,
        message,
        at: new Date().toISOString(),
      });
    };
  }

  // ------------------------------------------------------------------ hosts linked to instances

  /** The address a linked host is reached at now (a stopped and started instance has a new public IP). */
  async instanceAddress(ref: InstanceRef, signal?: AbortSignal): Promise<string> {
    const instance = await this.describe(ref, signal);
    if (instance.state !== 'running' && instance.state !== 'pending')
      throw new IpcError(
        IpcErrorCode.AWS_INSTANCE_STATE,
        `${instance.name ?? ref.instanceId} is ${instance.state}. ${nextStep(instance.state)}`,
        { state: instance.state, instanceId: ref.instanceId },
      );
    const address = instance.publicIp ?? instance.privateIp;
    if (!address)
      throw new IpcError(
        IpcErrorCode.AWS_FAILED,
        `${ref.instanceId} has no IP address yet. Wait until it runs, then connect.`,
      );
    return address;
  }

  async linkHost(hostId: string, ref: InstanceRef | null, signal?: AbortSignal): Promise<void> {
    const row = this.options.hosts.row(hostId);
    if (row.kind !== 'ssh')
      throw new IpcError(IpcErrorCode.HOST_READ_ONLY, '"This computer" cannot be linked to an instance.');
    if (!ref) {
      this.options.hosts.linkInstance(hostId, null);
      return;
    }
    const instance = await this.describe(ref, signal);
    this.options.hosts.linkInstance(hostId, ref, instance.publicIp ?? instance.privateIp ?? undefined);
  }

  private linkOf(hostId: string): InstanceRef {
    const row = this.options.hosts.row(hostId);
    if (!row.instanceAccountId || !row.instanceRegion || !row.instanceId)
      throw new IpcError(
        IpcErrorCode.HOST_NOT_LINKED,
        `${row.name} is not linked to an EC2 instance. Link it in the host's settings first.`,
      );
    return { accountId: row.instanceAccountId, region: row.instanceRegion, instanceId: row.instanceId };
  }

  /** Starts the linked instance when it is not running, waits for it, and connects. */
  async startAndConnect(hostId: string, signal: AbortSignal): Promise<void> {
    const ref = this.linkOf(hostId);
    let instance = await this.describe(ref, signal);
    if (instance.state === 'terminated' || instance.state === 'shutting-down')
      throw new IpcError(
        IpcErrorCode.AWS_INSTANCE_STATE,
        `${ref.instanceId} is ${instance.state}. Link the host to another instance.`,
        { state: instance.state, instanceId: ref.instanceId },
      );
    if (instance.state === 'stopping') {
      const account = this.account(ref.accountId);
      const progress = this.progress(ref);
      progress('stopping', 'Waiting for the instance to finish stopping before starting it');
      try {
        await this.wait(account, ref, 'stopped', signal);
      } catch (error) {
        throw this.failed(error, progress, signal, 'stopping');
      }
      instance = { ...instance, state: 'stopped' };
    }
    // A running instance is connected to at once, whatever its status checks say (SSH may well answer already).
    if (instance.state !== 'running') await this.instanceAction({ ...ref, action: 'start' }, signal);
    this.options.hosts.clearIdleStop(hostId);
    await this.options.hosts.connect(hostId, signal);
  }

  /** Whether the linked instance's security groups let SSH in from this computer's public address. */
  async sshAccess(hostId: string, signal?: AbortSignal): Promise<SshAccess> {
    const ref = this.linkOf(hostId);
    const row = this.options.hosts.row(hostId);
    const port = row.port ?? 22;
    const account = this.account(ref.accountId);
    const [instance, myAddress] = await Promise.all([
      this.describe(ref, signal),
      this.myAddress(signal).catch(() => null),
    ]);
    if (!myAddress)
      return { allowed: null, myAddress: null, detail: `Could not look up this computer's public address.` };
    const groupIds = instance.securityGroups.map((g) => g.id);
    if (groupIds.length === 0)
      return { allowed: false, myAddress, detail: `${ref.instanceId} has no security group, so nothing reaches it.` };
    const { ec2 } = this.client(account, ref.region);
    let groups;
    try {
      groups = await this.send(this.context(account, ref.region, 'ec2:DescribeSecurityGroups'), () =>
        ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: groupIds }), { abortSignal: signal }),
      );
    } catch (error) {
      return { allowed: null, myAddress, detail: `Could not read the security groups: ${(error as Error).message}` };
    }
    for (const group of groups.SecurityGroups ?? [])
      for (const rule of group.IpPermissions ?? []) {
        const coversPort =
          rule.IpProtocol === '-1' ||
          (rule.IpProtocol === 'tcp' && (rule.FromPort ?? 0) <= port && port <= (rule.ToPort ?? 65535));
        if (!coversPort) continue;
        const range = (rule.IpRanges ?? []).find((r) => r.CidrIp && ipv4InCidr(myAddress, r.CidrIp));
        if (range)
          return {
            allowed: true,
            myAddress,
            detail: `${group.GroupName ?? group.GroupId} lets ${range.CidrIp} reach port ${port}.`,
          };
      }
    return {
      allowed: false,
      myAddress,
      detail: `No rule of ${groupIds.join(', ')} lets ${myAddress} reach port ${port}. Add an inbound rule for TCP ${port} from ${myAddress}/32 (or connect over a VPN to its private address).`,
    };
  }

  /** This computer's public address as AWS sees it. */
  async myAddress(signal?: AbortSignal): Promise<string> {
    const url = this.options.checkIpUrl ?? DEFAULT_CHECKIP_URL;
    let text: string;
    try {
      const response = await fetch(url, {
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(10_000)]) : AbortSignal.timeout(10_000),
      });
      text = (await response.text()).trim();
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
    } catch (error) {
      throw new IpcError(
        IpcErrorCode.AWS_UNREACHABLE,
        `Could not look up this computer's public address at ${url} (${(error as Error).message}). Check the network connection.`,
      );
    }
    if (!/^(\d{1,3}\.){3}\d{1,3}$/.test(text) || text.split('.').some((octet) => Number(octet) > 255))
      throw new IpcError(
        IpcErrorCode.AWS_FAILED,
        `${url} did not answer an IPv4 address (${text.slice(0, 60)}). Slotdeck opens SSH to one IPv4 address only.`,
      );
    return text;
  }

  // ------------------------------------------------------------------ launch

  async launchOptions(accountId: string, region: string, signal?: AbortSignal): Promise<LaunchOptions> {
    const account = this.account(accountId);
    const { ec2 } = this.client(account, region);
    const [images, pairs, myAddress] = await Promise.all([
      Promise.all(
        (Object.keys(IMAGE_LABELS) as LaunchImage[]).map(async (key) => ({
          key,
          label: IMAGE_LABELS[key].label,
          imageId: await this.imageId(account, region, key, 'x86_64', signal),
          sshUser: IMAGE_LABELS[key].sshUser,
          architecture: 'x86_64',
        })),
      ),
      this.send(this.context(account, region, 'ec2:DescribeKeyPairs'), () =>
        ec2.send(new DescribeKeyPairsCommand({}), { abortSignal: signal }),
      ),
      this.myAddress(signal).catch(() => null),
    ]);
    return {
      images,
      keyPairs: (pairs.KeyPairs ?? []).map((p) => p.KeyName ?? '').filter(Boolean),
      instanceTypes: INSTANCE_TYPES,
      myAddress,
    };
  }

  private async imageId(
    account: AwsAccountRow,
    region: string,
    image: LaunchImage,
    architecture: 'arm64' | 'x86_64',
    signal?: AbortSignal,
  ): Promise<string> {
    const { ssm } = this.client(account, region);
    const name = imageParameter(image, architecture);
    const answer = await this.send(this.context(account, region, 'ssm:GetParameter'), () =>
      ssm.send(new GetParameterCommand({ Name: name }), { abortSignal: signal }),
    );
    const value = answer.Parameter?.Value;
    if (!value) throw new IpcError(IpcErrorCode.AWS_NOT_FOUND, `AWS has no current image under ${name} in ${region}.`);
    return value;
  }

  /**
   * Launches a host: the image from AWS's public SSM parameters, a key pair (a new one's private key straight into the
   * vault), a security group letting SSH in from this computer's address only, tags; then the host profile linked to
   * the instance, and the wait until it runs and passes its status checks.
   *
   * Calls that make something in AWS are never aborted: a cancelled request may still be carried out by AWS, and its
   * answer (a private key, an instance id) would be lost. The cancel is looked at after each of them returns, and the
   * cancel message names what was made.
   */
  async launch(
    input: IpcParsedInput<'aws:launch'>,
    signal: AbortSignal,
  ): Promise<{ instance: Ec2Instance; hostId: string }> {
    const account = this.account(input.accountId);
    const region = input.region;
    const { ec2 } = this.client(account, region);
    const ref = { accountId: account.id, region, instanceId: null as string | null };
    const progress = this.progress(ref);
    const ctx = (action: string) => this.context(account, region, action);
    const abortable = { abortSignal: signal };
    const pendingKey = `aws/${account.id}/${region}/key-pair/${input.keyPair.name}`;
    /** What exists because of this launch, for an honest cancel message. */
    const made: { keyPair?: string; group?: string; instanceId?: string; hostName?: string } = {};
    const stopIfCancelled = (): void => {
      if (signal.aborted) throw new IpcError(IpcErrorCode.IPC_CANCELLED, 'Cancelled.');
    };

    // Everything that can be checked is checked before anything is made (and paid for).
    if (this.options.hosts.list().some((h) => h.name.toLowerCase() === input.name.toLowerCase()))
      throw new IpcError(
        IpcErrorCode.HOST_NAME_TAKEN,
        `A host named "${input.name}" already exists. Choose another name.`,
      );
    if (input.keyPair.mode === 'existing' && input.keyPath) {
      const key = this.options.hosts.readKeyFile(input.keyPath);
      checkPrivateKey(key);
    }
    progress('requested', `Preparing ${input.name}…`);
    try {
      const architecture = architectureOf(input.instanceType);
      const imageId = await this.imageId(account, region, input.image, architecture, signal);
      const rootDevice = await this.rootDeviceOf(account, region, imageId, signal);
      const myAddress = await this.myAddress(signal);

      let privateKey: string | null = null;
      if (input.keyPair.mode === 'create') {
        const kept = await this.options.vault.get(pendingKey);
        try {
          const created = await this.send(ctx('ec2:CreateKeyPair'), () =>
            ec2.send(
              new CreateKeyPairCommand({
                KeyName: input.keyPair.name,
                KeyType: 'ed25519',
                KeyFormat: 'pem',
                TagSpecifications: [{ ResourceType: 'key-pair', Tags: [{ Key: 'slotdeck', Value: input.name }] }],
              }),
            ),
          );
          privateKey = created.KeyMaterial ?? null;
          if (!privateKey) throw new IpcError(IpcErrorCode.AWS_LAUNCH_FAILED, 'AWS made the key pair but sent no key.');
          // Kept at once: AWS never hands this key out again, whatever happens next.
          await this.options.vault.set(pendingKey, privateKey);
          made.keyPair = input.keyPair.name;
        } catch (error) {
          // An earlier launch made this pair and failed later: its private key is still in the keychain.
          if (!(kept && error instanceof IpcError && error.details?.awsCode === 'InvalidKeyPair.Duplicate'))
            throw error;
          privateKey = kept;
          progress(
            'requested',
            `Key pair ${input.keyPair.name} exists from an earlier launch; reusing its private key kept in the keychain.`,
          );
        }
        stopIfCancelled();
      } else {
        await this.send(ctx('ec2:DescribeKeyPairs'), () =>
          ec2.send(new DescribeKeyPairsCommand({ KeyNames: [input.keyPair.name] }), abortable),
        );
        // A pair made by an earlier launch that failed later: its key is still in the vault.
        if (!input.keyPath) privateKey = await this.options.vault.get(pendingKey);
      }

      const groupId = await this.sshSecurityGroup(account, region, input.name, myAddress, signal, made);
      stopIfCancelled();
      const sshUser = IMAGE_LABELS[input.image].sshUser;
      const tags = [
        { Key: 'Name', Value: input.name },
        { Key: 'slotdeck', Value: input.name },
        { Key: SSH_USER_TAG, Value: sshUser },
      ];
      const run = await this.send(ctx('ec2:RunInstances'), () =>
        ec2.send(
          new RunInstancesCommand({
            ImageId: imageId,
            InstanceType: input.instanceType as never,
            MinCount: 1,
            MaxCount: 1,
            KeyName: input.keyPair.name,
            SecurityGroupIds: [groupId],
            BlockDeviceMappings: [
              {
                DeviceName: rootDevice,
                Ebs: { VolumeSize: input.diskGb, VolumeType: 'gp3', DeleteOnTermination: true, Encrypted: true },
              },
            ],
            // The idle policy's `shutdown -h now` must stop the machine, not terminate it.
            InstanceInitiatedShutdownBehavior: 'stop',
            MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
            TagSpecifications: [
              { ResourceType: 'instance', Tags: tags },
              { ResourceType: 'volume', Tags: tags.slice(0, 2) },
            ],
            // The SDK's retries of this call reuse the token, so a retry never launches a second instance.
            ClientToken: randomUUID(),
          }),
        ),
      );
      const instanceId = run.Instances?.[0]?.InstanceId;
      if (!instanceId)
        throw new IpcError(IpcErrorCode.AWS_LAUNCH_FAILED, 'AWS accepted the launch but named no instance.');
      made.instanceId = instanceId;
      progress('pending', `${instanceId} launched`, instanceId);

      // The profile exists from now on (even when cancelled meanwhile), so "Start and connect" can finish the job.
      const host = await this.options.hosts.createLinked(
        {
          name: input.name,
          address: null,
          port: 22,
          user: sshUser,
          auth: privateKey
            ? { method: 'key', privateKey }
            : input.keyPath
              ? { method: 'key', keyPath: input.keyPath }
              : { method: 'agent' },
          agentPort: 7420,
          agentCommand: 'slotdeck-agent',
        },
        { accountId: account.id, region, instanceId },
      );
      made.hostName = host.name;
      savePendingIdle(this.options.store, host.id, input.idleStopMinutes);
      if (privateKey) await this.options.vault.delete(pendingKey);
      stopIfCancelled();

      const instanceRef = { accountId: account.id, region, instanceId };
      await this.wait(account, instanceRef, 'running', signal);
      const running = await this.describe(instanceRef, signal);
      this.options.hosts.linkInstance(host.id, instanceRef, running.publicIp ?? running.privateIp ?? undefined);
      progress('running', `Running at ${running.publicIp ?? running.privateIp ?? 'no address yet'}`);
      progress('status-checks', 'Waiting for the status checks');
      await this.wait(account, instanceRef, 'status-ok', signal);
      progress('ready', `${input.name} is ready`);
      return { instance: await this.describe(instanceRef, signal), hostId: host.id };
    } catch (error) {
      if (signal.aborted || (error instanceof IpcError && error.code === IpcErrorCode.IPC_CANCELLED)) {
        const message = cancelledLaunchMessage(made);
        progress('cancelled', message);
        throw new IpcError(IpcErrorCode.IPC_CANCELLED, message);
      }
      let mapped =
        error instanceof IpcError ? error : new IpcError(IpcErrorCode.AWS_LAUNCH_FAILED, (error as Error).message);
      // A failure after RunInstances must not hide a machine that runs (and is billed).
      if (made.instanceId && !made.hostName)
        mapped = new IpcError(
          mapped.code,
          `${mapped.message} Instance ${made.instanceId} was launched and is running in AWS (billed until you stop or terminate it); no host profile was made for it.`,
          mapped.details,
        );
      progress('failed', mapped.message);
      throw mapped;
    }
  }

  /**
   * The image's root device name, asked of AWS when not known: without it the disk size would go to a second volume
   * (Ubuntu's root is /dev/sda1, Amazon Linux's /dev/xvda), so the launch stops rather than guess.
   */
  private async rootDeviceOf(
    account: AwsAccountRow,
    region: string,
    imageId: string,
    signal: AbortSignal,
  ): Promise<string> {
    const known = this.images.get(`${region}/${imageId}`)?.rootDevice;
    if (known) return known;
    let rootDevice: string | null = null;
    try {
      const { ec2 } = this.client(account, region);
      const answer = await this.send(this.context(account, region, 'ec2:DescribeImages'), () =>
        ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal: signal }),
      );
      const image = answer.Images?.find((i) => i.ImageId === imageId);
      if (image) {
        rootDevice = image.RootDeviceName || null;
        this.images.set(`${region}/${imageId}`, {
          name: image.Name ?? null,
          ownerId: image.OwnerId ?? null,
          rootDevice,
        });
      }
    } catch (error) {
      if (signal.aborted) throw error;
      throw new IpcError(
        IpcErrorCode.AWS_LAUNCH_FAILED,
        `Could not read the root device of image ${imageId} in ${region}, so the disk size cannot be applied: ${(error as Error).message}`,
      );
    }
    if (!rootDevice)
      throw new IpcError(
        IpcErrorCode.AWS_LAUNCH_FAILED,
        `AWS did not say the root device of image ${imageId} in ${region}, so the disk size cannot be applied. Nothing was made; try again, or pick the other image.`,
      );
    return rootDevice;
  }

  /**
   * `slotdeck-<name>` in the default VPC, letting TCP 22 in from `address`/32 only: made (tagged slotdeck=<name>), or
   * reused when Slotdeck made it for this name before. A group of that name without the tag, or with any rule wider
   * than that (another port, a range wider than /32), is refused: the instance would be open to more than this address.
   */
  private async sshSecurityGroup(
    account: AwsAccountRow,
    region: string,
    hostName: string,
    address: string,
    signal: AbortSignal,
    made: { group?: string },
  ): Promise<string> {
    const { ec2 } = this.client(account, region);
    const ctx = (action: string) => this.context(account, region, action);
    const name = securityGroupName(hostName);
    const vpcs = await this.send(ctx('ec2:DescribeVpcs'), () =>
      ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] }), {
        abortSignal: signal,
      }),
    );
    const vpcId = vpcs.Vpcs?.[0]?.VpcId;
    if (!vpcId)
      throw new IpcError(
        IpcErrorCode.AWS_LAUNCH_FAILED,
        `${region} has no default VPC, and Slotdeck launches into the default VPC. Create one (VPC console: Actions → Create default VPC) or pick another region.`,
      );
    const existing = await this.send(ctx('ec2:DescribeSecurityGroups'), () =>
      ec2.send(
        new DescribeSecurityGroupsCommand({
          Filters: [
            { Name: 'group-name', Values: [name] },
            { Name: 'vpc-id', Values: [vpcId] },
          ],
        }),
        { abortSignal: signal },
      ),
    );
    const found = existing.SecurityGroups?.[0];
    let groupId = found?.GroupId;
    if (found && groupId) {
      const tag = found.Tags?.find((t) => t.Key === 'slotdeck')?.Value;
      if (tag !== hostName)
        throw new IpcError(
          IpcErrorCode.AWS_LAUNCH_FAILED,
          `Security group ${name} (${groupId}) already exists in the default VPC but Slotdeck did not make it for "${hostName}" (it has no tag slotdeck=${hostName}). Delete that group or choose another host name.`,
        );
      const wide = widerRule(found.IpPermissions ?? []);
      if (wide)
        throw new IpcError(
          IpcErrorCode.AWS_LAUNCH_FAILED,
          `Security group ${name} (${groupId}) has an inbound rule that lets in more than SSH from one address: ${wide}. Remove that rule in the AWS console (or delete the group), then launch again.`,
        );
    } else {
      const created = await this.send(ctx('ec2:CreateSecurityGroup'), () =>
        ec2.send(
          new CreateSecurityGroupCommand({
            GroupName: name,
            VpcId: vpcId,
            Description: `SSH to ${hostName} from the Slotdeck admin's address (made by Slotdeck)`,
            TagSpecifications: [{ ResourceType: 'security-group', Tags: [{ Key: 'slotdeck', Value: hostName }] }],
          }),
        ),
      );
      groupId = created.GroupId!;
      made.group = `${name} (${groupId})`;
    }
    try {
      await this.send(ctx('ec2:AuthorizeSecurityGroupIngress'), () =>
        ec2.send(
          new AuthorizeSecurityGroupIngressCommand({
            GroupId: groupId,
            IpPermissions: [
              {
                IpProtocol: 'tcp',
                FromPort: 22,
                ToPort: 22,
                IpRanges: [{ CidrIp: `${address}/32`, Description: 'SSH from the Slotdeck admin' }],
              },
            ],
          }),
        ),
      );
    } catch (error) {
      // The rule is there already (a second launch from the same address): nothing to add.
      if (!(error instanceof IpcError && error.details?.awsCode === 'InvalidPermission.Duplicate')) throw error;
    }
    return groupId;
  }

  dispose(): void {
    for (const clients of this.clients.values()) {
      clients.ec2.destroy();
      clients.ssm.destroy();
    }
    this.clients.clear();
  }
}

// ------------------------------------------------------------------ helpers

function view(row: AwsAccountRow): AwsAccount {
  return {
    id: row.id,
    name: row.name,
    source: row.source,
    profile: row.profile,
    accessKeyHint: row.accessKeyHint,
    regions: row.regions,
    createdAt: row.createdAt,
  };
}

function sourceOf(credentials: AwsCredentialsInput): Pick<AwsAccountRow, 'source' | 'profile' | 'accessKeyHint'> {
  if (credentials.source === 'profile') return { source: 'profile', profile: credentials.profile, accessKeyHint: null };
  if (credentials.source === 'environment') return { source: 'environment', profile: null, accessKeyHint: null };
  return { source: 'access-key', profile: null, accessKeyHint: accessKeyHint(credentials.accessKeyId.trim()) };
}

function staticKey(credentials: Extract<AwsCredentialsInput, { source: 'access-key' }>): StaticKey {
  return {
    accessKeyId: credentials.accessKeyId.trim(),
    secretAccessKey: credentials.secretAccessKey.trim(),
    ...(credentials.sessionToken?.trim() ? { sessionToken: credentials.sessionToken.trim() } : {}),
  };
}

const nameTaken = (name: string): IpcError =>
  new IpcError(IpcErrorCode.IPC_INPUT_INVALID, `An AWS account named "${name}" already exists. Choose another name.`, {
    fields: 'name',
  });

/** What a cancelled launch leaves behind, said plainly (an instance runs and is billed until stopped). */
function cancelledLaunchMessage(made: {
  keyPair?: string;
  group?: string;
  instanceId?: string;
  hostName?: string;
}): string {
  if (made.instanceId)
    return [
      `Cancelled, but instance ${made.instanceId} was already launched: it is running in AWS and billed until you stop or terminate it.`,
      made.hostName
        ? `Host profile "${made.hostName}" is linked to it, with its key (use Start and connect, or Stop it in the instance list).`
        : 'No host profile was made for it.',
    ].join(' ');
  const parts = ['Cancelled before an instance was launched.'];
  if (made.keyPair)
    parts.push(
      `Key pair ${made.keyPair} was made in AWS; its private key is kept in the keychain and is used again when you launch with that pair.`,
    );
  if (made.group) parts.push(`Security group ${made.group} was made (it lets SSH in from this computer only).`);
  return parts.join(' ').trim();
}

function checksOf(status: InstanceStatus | undefined): Ec2Instance['statusChecks'] {
  if (!status) return 'initializing';
  const parts = [status.InstanceStatus?.Status, status.SystemStatus?.Status];
  if (parts.includes('impaired')) return 'impaired';
  if (parts.every((p) => p === 'ok')) return 'ok';
  if (parts.includes('insufficient-data')) return 'insufficient-data';
  if (parts.includes('not-applicable')) return 'not-applicable';
  return 'initializing';
}

function nextStep(state: string): string {
  switch (state) {
    case 'stopped':
      return 'Start it (or use Start and connect).';
    case 'stopping':
      return 'Wait until it has stopped, then start it.';
    case 'pending':
      return 'It is starting; wait a moment.';
    case 'running':
      return 'It is already running.';
    case 'terminated':
    case 'shutting-down':
      return 'It is gone for good; link the host to another instance.';
    default:
      return 'Refresh the list and try again.';
  }
}
