import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bootstrap, type PanelCore } from '../../../src/main/bootstrap';
import { loadKeyring } from '../../../src/main/keyring';
import { consoleLogger } from '../../../src/main/log';
import { createVault, type SecretVault } from '../../../src/main/services/secrets/vault';
import type { InvokeChannel } from '../../../src/shared/ipc/channels';
import type { AwsProgress, IpcInput, IpcOutput, IpcResult } from '../../../src/shared/ipc/contract';
import { AuthorizeSecurityGroupIngressCommand, EC2Client } from '@aws-sdk/client-ec2';
import { takePendingIdle } from '../../../src/main/services/aws/pending-idle';
import {
  AMI_PARAMETERS,
  FAKE_AWS_CREDENTIALS,
  FAKE_SSO_ACCESS_TOKEN,
  FAKE_SSO_CREDENTIALS,
  FakeEc2,
} from '../fixtures/fake-ec2';
import { AGENT_CLI, AgentProcess } from '../helpers/agent.js';
import { killAll, processesOf } from '../helpers/processes.js';
import { filesUnder } from '../helpers/secrets.js';
import { TestSshd } from '../helpers/sshd.js';
import { until } from '../helpers/until.js';

/** A second key the stand-in accepts: the one pasted into the panel (it must end up in the keychain only). */
const PASTED = { accessKeyId: 'AKIAPASTEDKEY0000042', secretAccessKey: 'pasted/Secret+Key/That/Must/Not/Leak/0042' };
const MY_ADDRESS = '198.51.100.23';

let core: PanelCore;
let aws: FakeEc2;
let dataDir: string;
let awsDir: string;
let vault: SecretVault;
const logs: string[] = [];
/** Everything main handed the renderer: every IPC answer and event. */
const outputs: string[] = [];
const progress: AwsProgress[] = [];
/** The public IPs instances get at their next starts, in order (then a fresh TEST-NET address). */
const nextIps: string[] = [];
let fallbackIp = 10;

async function call<C extends InvokeChannel>(
  channel: C,
  input: IpcInput<C>,
  requestId?: string,
): Promise<IpcResult<IpcOutput<C>>> {
  const result = (await core.dispatcher.dispatch(channel, input, requestId)) as IpcResult<IpcOutput<C>>;
  outputs.push(JSON.stringify(result));
  return result;
}

async function ok<C extends InvokeChannel>(channel: C, input: IpcInput<C>): Promise<IpcOutput<C>> {
  const result = await call(channel, input);
  if (!result.ok) throw new Error(`${channel}: ${result.error.code} ${result.error.message}`);
  return result.data;
}

async function fails<C extends InvokeChannel>(channel: C, input: IpcInput<C>) {
  const result = await call(channel, input);
  if (result.ok) throw new Error(`${channel} succeeded: ${JSON.stringify(result.data).slice(0, 300)}`);
  return result.error;
}

const phasesOf = (instanceId: string) => progress.filter((p) => p.instanceId === instanceId).map((p) => p.phase);

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'sd-aws-'));
  awsDir = mkdtempSync(join(tmpdir(), 'sd-aws-config-'));
  aws = await FakeEc2.start({
    accessKeys: {
      [FAKE_AWS_CREDENTIALS.accessKeyId]: FAKE_AWS_CREDENTIALS.secretAccessKey,
      [PASTED.accessKeyId]: PASTED.secretAccessKey,
    },
    myAddress: MY_ADDRESS,
    transitions: { pendingMs: 300, stoppingMs: 300, statusInitMs: 300 },
    publicIp: () => nextIps.shift() ?? `203.0.113.${(fallbackIp += 1)}`,
  });
  writeFileSync(
    join(awsDir, 'config'),
    [
      '[profile stand-in]',
      'region = eu-west-1',
      '',
      '[profile wrong-secret]',
      'region = eu-west-1',
      '',
      '[profile work-sso]',
      'sso_session = corp',
      'sso_account_id = 123456789012',
      'sso_role_name = Admin',
      'region = us-east-1',
      '',
      '[sso-session corp]',
      'sso_start_url = https://corp.awsapps.com/start',
      'sso_region = us-east-1',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(awsDir, 'credentials'),
    [
      '[stand-in]',
      `aws_access_key_id = ${FAKE_AWS_CREDENTIALS.accessKeyId}`,
      `aws_secret_access_key = ${FAKE_AWS_CREDENTIALS.secretAccessKey}`,
      '[wrong-secret]',
      `aws_access_key_id = ${FAKE_AWS_CREDENTIALS.accessKeyId}`,
      'aws_secret_access_key = not-the-right-secret-at-all-0000000000000',
      '',
    ].join('\n'),
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SLOTDECK_MASTER_KEY: 'integration-test-master-key',
    SLOTDECK_AGENT_GATEWAY_PORT: '0',
    AWS_CONFIG_FILE: join(awsDir, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(awsDir, 'credentials'),
  };
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  delete env.AWS_PROFILE;
  core = await bootstrap({
    mode: 'browser',
    version: 'test',
    dataDir,
    agentDir: resolve(import.meta.dirname, '../../../remote-agent'),
    nodePath: process.execPath,
    log: consoleLogger((line) => logs.push(line)),
    keyring: loadKeyring(),
    env,
    backoff: { initialMs: 100, maxMs: 1000 },
    aws: {
      endpoint: aws.url,
      checkIpUrl: aws.checkIpUrl,
      waiter: { minDelay: 0.1, maxDelay: 0.2 },
      pageSize: 5,
    },
  });
  core.events.subscribe((channel, payload) => {
    outputs.push(JSON.stringify({ channel, payload }));
    if (channel === 'aws:progress') progress.push(payload as AwsProgress);
  });
  // The same secret store the panel uses, to look at what it kept.
  vault = await createVault({
    file: join(dataDir, 'secrets.enc.json'),
    masterKey: env.SLOTDECK_MASTER_KEY,
    entry: loadKeyring(),
  });
  await core.ready;
});

afterAll(async () => {
  await core?.dispose();
  await aws?.stop();
  killAll(processesOf(dataDir));
  rmSync(dataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  rmSync(awsDir, { recursive: true, force: true });
});

beforeEach(() => {
  aws.options.transitions.pendingMs = 300;
  aws.options.transitions.stoppingMs = 300;
  aws.clearFaults();
});

describe('AWS accounts against the EC2 stand-in', () => {
  it('lists the profiles of a temp ~/.aws/config by kind, never their keys', async () => {
    const profiles = await ok('aws:profiles', {});
    expect(profiles.profiles).toEqual([
      { name: 'stand-in', kind: 'static', region: 'eu-west-1' },
      { name: 'work-sso', kind: 'sso', region: 'us-east-1' },
      { name: 'wrong-secret', kind: 'static', region: 'eu-west-1' },
    ]);
    expect(profiles.environment).toBe(false);
    expect(JSON.stringify(profiles)).not.toContain(FAKE_AWS_CREDENTIALS.secretAccessKey);
  });

  it('adds an account from a profile after checking it once with DescribeRegions, and refuses a wrong secret', async () => {
    const before = aws.calls('DescribeRegions').length;
    const account = await ok('aws:account-create', {
      name: 'Profile account',
      regions: ['eu-west-1'],
      credentials: { source: 'profile', profile: 'stand-in' },
    });
    expect(account).toMatchObject({ source: 'profile', profile: 'stand-in', accessKeyHint: null });
    expect(aws.calls('DescribeRegions')).toHaveLength(before + 1);
    expect(aws.calls('DescribeRegions').at(-1)!.accessKeyId).toBe(FAKE_AWS_CREDENTIALS.accessKeyId);

    const wrong = await fails('aws:account-create', {
      name: 'Wrong',
      regions: ['eu-west-1'],
      credentials: { source: 'profile', profile: 'wrong-secret' },
    });
    expect(wrong.code).toBe('AWS_CREDENTIALS_INVALID');
    expect(wrong.message).toContain('Wrong');
    const missing = await fails('aws:account-create', {
      name: 'Missing',
      regions: ['eu-west-1'],
      credentials: { source: 'profile', profile: 'no-such-profile' },
    });
    expect(missing.code).toBe('AWS_CREDENTIALS_MISSING');
    const noEnvironment = await fails('aws:account-create', {
      name: 'From env',
      regions: ['eu-west-1'],
      credentials: { source: 'environment' },
    });
    expect(noEnvironment.code).toBe('AWS_CREDENTIALS_MISSING');
    expect(noEnvironment.message).toContain('AWS_ACCESS_KEY_ID');
    const { accounts } = await ok('aws:accounts', {});
    expect(accounts.map((a) => a.name)).toEqual(['Profile account']);
  });

  it('adds an account from an SSO profile after aws sso login, and says to sign in again once the login expired', async () => {
    // What `aws sso login --profile work-sso` leaves behind: the session's token in ~/.aws/sso/cache.
    const home = join(awsDir, 'home');
    const cacheDir = join(home, '.aws', 'sso', 'cache');
    mkdirSync(cacheDir, { recursive: true });
    const tokenFile = join(cacheDir, `${createHash('sha1').update('corp').digest('hex')}.json`);
    const login = (expiresAt: Date) =>
      writeFileSync(
        tokenFile,
        JSON.stringify({
          startUrl: 'https://corp.awsapps.com/start',
          region: 'us-east-1',
          accessToken: FAKE_SSO_ACCESS_TOKEN,
          expiresAt: expiresAt.toISOString(),
        }),
      );
    const realHome = process.env.HOME;
    process.env.HOME = home; // the SDK reads the SSO cache under $HOME
    try {
      login(new Date(Date.now() + 3_600_000));
      const account = await ok('aws:account-create', {
        name: 'Corp SSO',
        regions: ['us-east-1'],
        credentials: { source: 'profile', profile: 'work-sso' },
      });
      expect(aws.calls('GetRoleCredentials').length).toBeGreaterThan(0);
      // The role's temporary key signed the check.
      expect(aws.calls('DescribeRegions').at(-1)!.accessKeyId).toBe(FAKE_SSO_CREDENTIALS.accessKeyId);
      await ok('aws:account-remove', { id: account.id });

      login(new Date(Date.now() - 60_000));
      const expired = await fails('aws:account-create', {
        name: 'Corp SSO',
        regions: ['us-east-1'],
        credentials: { source: 'profile', profile: 'work-sso' },
      });
      expect(expired.code).toBe('AWS_CREDENTIALS_MISSING');
      expect(expired.message).toContain('aws sso login --profile work-sso');
    } finally {
      process.env.HOME = realHome;
    }
  });

  it('keeps a pasted access key in the keychain only: not in SQLite, the logs or anything the renderer got', async () => {
    const refused = await fails('aws:account-create', {
      name: 'Typo',
      regions: ['eu-west-1'],
      credentials: { source: 'access-key', accessKeyId: PASTED.accessKeyId, secretAccessKey: 'x'.repeat(40) },
    });
    expect(refused.code).toBe('AWS_CREDENTIALS_INVALID');

    const account = await ok('aws:account-create', {
      name: 'Pasted',
      regions: ['eu-west-1', 'us-east-1'],
      credentials: { source: 'access-key', ...PASTED },
    });
    expect(account).toMatchObject({ source: 'access-key', accessKeyHint: 'AKIA…0042' });
    aws.addInstance('us-east-1', { name: 'pasted-box' });
    const listed = await ok('aws:instances', { accountId: account.id });
    expect(listed.instances.map((i) => i.name)).toContain('pasted-box');
    // The stand-in checked every signature: the panel signed with the pasted key.
    expect(aws.requests.filter((r) => r.accessKeyId === PASTED.accessKeyId).length).toBeGreaterThan(1);

    expect(JSON.parse((await vault.get(`aws/${account.id}/access-key`))!)).toMatchObject(PASTED);
    for (const file of filesUnder(dataDir).filter((f) => !f.includes(`${join(dataDir, 'agents')}/`)))
      expect(readFileSync(file).includes(PASTED.secretAccessKey), file).toBe(false);
    expect(logs.join('\n')).not.toContain(PASTED.secretAccessKey);
    expect(outputs.join('\n')).not.toContain(PASTED.secretAccessKey);

    await ok('aws:account-remove', { id: account.id });
    expect(await vault.get(`aws/${account.id}/access-key`)).toBeNull();
  });
});

describe('instances (stand-in EC2)', () => {
  let accountId: string;

  beforeAll(async () => {
    accountId = (
      await ok('aws:account-create', {
        name: 'Fleet',
        regions: ['eu-west-1', 'eu-central-1'],
        credentials: { source: 'profile', profile: 'stand-in' },
      })
    ).id;
  });

  it('lists every instance of every region across pages, with each region failing on its own', async () => {
    for (let n = 0; n < 12; n++)
      aws.addInstance('eu-central-1', {
        name: `batch-${n}`,
        state: n % 3 === 0 ? 'stopped' : 'running',
        tags: { team: n % 2 ? 'odd' : 'even' },
        image: n === 1 ? 'ubuntu' : n === 2 ? 'debian' : 'al2023',
      });
    aws.addInstance('eu-central-1', { name: 'gone', state: 'terminated' });
    const before = aws.calls('DescribeInstances').length;
    const { instances, regionErrors } = await ok('aws:instances', { accountId });
    const batch = instances.filter((i) => i.region === 'eu-central-1');
    expect(batch.map((i) => i.name).sort()).toEqual([...Array(12).keys()].map((n) => `batch-${n}`).sort());
    expect(regionErrors).toEqual([]);
    // Pages of 5: three calls for eu-central-1's 12, with the token of the one before.
    const central = aws
      .calls('DescribeInstances')
      .slice(before)
      .filter((r) => r.region === 'eu-central-1');
    expect(central.map((r) => r.params.MaxResults)).toEqual(['5', '5', '5']);
    expect(central[1]!.params.NextToken).toBeTruthy();

    const byName = new Map(batch.map((i) => [i.name, i]));
    expect(byName.get('batch-0')).toMatchObject({ state: 'stopped', publicIp: null, statusChecks: null });
    expect(byName.get('batch-4')).toMatchObject({ state: 'running', suggestedUser: 'ec2-user', statusChecks: 'ok' });
    expect(byName.get('batch-1')?.suggestedUser).toBe('ubuntu');
    expect(byName.get('batch-2')?.suggestedUser).toBe('admin');
    expect(byName.get('batch-4')?.publicIp).toMatch(/^203\.0\.113\./);

    // A region the credentials are not valid in is reported beside the others' instances.
    await ok('aws:account-update', { id: accountId, changes: { regions: ['eu-central-1', 'ap-south-1'] } });
    const partial = await ok('aws:instances', { accountId });
    expect(partial.instances.length).toBe(12);
    expect(partial.regionErrors).toEqual([
      expect.objectContaining({ region: 'ap-south-1', code: 'AWS_CREDENTIALS_INVALID' }),
    ]);
    await ok('aws:account-update', { id: accountId, changes: { regions: ['eu-west-1', 'eu-central-1'] } });
  });

  it('filters by tag, state and instance id', async () => {
    const odd = await core.aws.listInstances(accountId, { regions: ['eu-central-1'], tags: { team: 'odd' } });
    expect(odd.instances.map((i) => i.tags.team)).toEqual(Array(6).fill('odd'));
    const stopped = await core.aws.listInstances(accountId, { regions: ['eu-central-1'], states: ['stopped'] });
    expect(stopped.instances.every((i) => i.state === 'stopped')).toBe(true);
    expect(stopped.instances.length).toBe(4);
    const one = odd.instances[0]!;
    const byId = await core.aws.listInstances(accountId, { regions: ['eu-central-1'], instanceIds: [one.instanceId] });
    expect(byId.instances.map((i) => i.instanceId)).toEqual([one.instanceId]);
    const filters = aws.calls('DescribeInstances').at(-1)!.params;
    expect(filters['InstanceId.1']).toBe(one.instanceId);
  });

  it('starts, stops and reboots an instance with progress events in order', async () => {
    const box = aws.addInstance('eu-west-1', { name: 'cycle', state: 'stopped' });
    const ref = { accountId, region: 'eu-west-1', instanceId: box.id };
    const started = await ok('aws:instance-action', { ...ref, action: 'start' });
    expect(started).toMatchObject({ state: 'running', statusChecks: 'ok' });
    expect(phasesOf(box.id)).toEqual(['requested', 'pending', 'running', 'status-checks', 'ready']);

    progress.length = 0;
    const stopped = await ok('aws:instance-action', { ...ref, action: 'stop' });
    expect(stopped.state).toBe('stopped');
    expect(phasesOf(box.id)).toEqual(['requested', 'stopping', 'stopped']);

    await ok('aws:instance-action', { ...ref, action: 'start' });
    progress.length = 0;
    const rebooted = await ok('aws:instance-action', { ...ref, action: 'reboot' });
    expect(rebooted.state).toBe('running');
    // EC2 reports no reboot progress: the panel says it was requested and claims no passed checks.
    expect(phasesOf(box.id)).toEqual(['requested', 'rebooting']);
    expect(progress.at(-1)!.message).toMatch(/^Reboot requested\./);
    expect(aws.calls('RebootInstances').at(-1)!.params['InstanceId.1']).toBe(box.id);
  });

  it('stops waiting when the admin cancels, and says so; the instance goes on starting in AWS', async () => {
    aws.options.transitions.pendingMs = 60_000;
    const box = aws.addInstance('eu-west-1', { name: 'slow', state: 'stopped' });
    const answer = call(
      'aws:instance-action',
      { accountId, region: 'eu-west-1', instanceId: box.id, action: 'start' },
      'req-cancel',
    );
    await until(
      'the pending phase',
      () => phasesOf(box.id),
      (phases) => phases.includes('pending'),
    );
    core.dispatcher.cancel('req-cancel');
    const result = await answer;
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('IPC_CANCELLED');
    expect(phasesOf(box.id).at(-1)).toBe('cancelled');
    expect(aws.instance(box.id).state).toBe('pending');
  });

  it('names the missing IAM action when AWS answers UnauthorizedOperation', async () => {
    const box = aws.addInstance('eu-west-1', { name: 'locked', state: 'stopped' });
    aws.fault('StartInstances', 'UnauthorizedOperation');
    const error = await fails('aws:instance-action', {
      accountId,
      region: 'eu-west-1',
      instanceId: box.id,
      action: 'start',
    });
    expect(error.code).toBe('AWS_UNAUTHORIZED');
    expect(error.message).toContain('ec2:StartInstances');
    expect(error.details?.action).toBe('ec2:StartInstances');
    expect(phasesOf(box.id)).toEqual(['requested', 'failed']);
    expect(aws.instance(box.id).state).toBe('stopped');
  });

  it('says the current state when AWS answers IncorrectInstanceState', async () => {
    aws.options.transitions.stoppingMs = 60_000;
    const box = aws.addInstance('eu-west-1', { name: 'busy', state: 'stopping' });
    const error = await fails('aws:instance-action', {
      accountId,
      region: 'eu-west-1',
      instanceId: box.id,
      action: 'start',
    });
    expect(error.code).toBe('AWS_INSTANCE_STATE');
    expect(error.details?.state).toBe('stopping');
    expect(error.message).toContain(`${box.id} is stopping`);
    expect(aws.instance(box.id).state).toBe('stopping');
  });

  it('says AWS cannot be reached when the connection keeps dropping (after the SDK retried)', async () => {
    const box = aws.addInstance('eu-west-1', { name: 'offline', state: 'stopped' });
    aws.fault('StartInstances', 'ConnectionReset', { times: 3 });
    const error = await fails('aws:instance-action', {
      accountId,
      region: 'eu-west-1',
      instanceId: box.id,
      action: 'start',
    });
    expect(error.code).toBe('AWS_UNREACHABLE');
    expect(error.message).toContain('eu-west-1');
    expect(aws.calls('StartInstances').filter((r) => r.params['InstanceId.1'] === box.id)).toHaveLength(3);
  });

  it('retries RequestLimitExceeded, and reports AWS_THROTTLED when AWS keeps refusing', async () => {
    const before = aws.calls('DescribeInstances').length;
    aws.throttle(2, 'DescribeInstances');
    const { regionErrors } = await ok('aws:instances', { accountId });
    expect(regionErrors).toEqual([]);
    // Two refused, then answered: the SDK's retries, not the panel giving up.
    expect(aws.calls('DescribeInstances').length - before).toBeGreaterThanOrEqual(4);

    const box = aws.addInstance('eu-west-1', { name: 'throttled', state: 'stopped' });
    aws.throttle(10, 'StartInstances');
    const error = await fails('aws:instance-action', {
      accountId,
      region: 'eu-west-1',
      instanceId: box.id,
      action: 'start',
    });
    expect(error.code).toBe('AWS_THROTTLED');
    expect(aws.calls('StartInstances').filter((r) => r.params['InstanceId.1'] === box.id)).toHaveLength(3);
    expect(aws.instance(box.id).state).toBe('stopped');
  });
});

describe('launching and connecting (stand-in EC2, real sshd and agent)', () => {
  let accountId: string;
  let sshd: TestSshd;
  let remote: AgentProcess;

  beforeAll(async () => {
    [sshd, remote] = await Promise.all([TestSshd.start(), AgentProcess.start()]);
    accountId = (
      await ok('aws:account-create', {
        name: 'Launcher',
        regions: ['eu-west-1'],
        credentials: { source: 'profile', profile: 'stand-in' },
      })
    ).id;
  });

  afterAll(async () => {
    sshd?.stop();
    await remote?.destroy();
  });

  it('launches a host: image from SSM, a new key pair into the keychain, SSH from my /32 only, tags, a linked profile', async () => {
    const keyPairName = 'slotdeck-launched';
    const images = await ok('aws:launch-options', { accountId, region: 'eu-west-1' });
    expect(images.myAddress).toBe(MY_ADDRESS);
    expect(images.images.map((i) => i.key)).toEqual(['al2023', 'ubuntu-24.04']);

    progress.length = 0;
    const { instance, hostId } = await ok('aws:launch', {
      accountId,
      region: 'eu-west-1',
      name: 'Build box',
      instanceType: 't4g.medium',
      image: 'al2023',
      diskGb: 30,
      keyPair: { mode: 'create', name: keyPairName },
      idleStopMinutes: 60,
    });
    expect(instance).toMatchObject({ state: 'running', statusChecks: 'ok', name: 'Build box', type: 't4g.medium' });
    expect(instance.tags).toMatchObject({ Name: 'Build box', slotdeck: 'Build box' });
    expect(instance.linkedHostIds).toEqual([hostId]);
    expect(progress.map((p) => p.phase)).toEqual(['requested', 'pending', 'running', 'status-checks', 'ready']);

    // Graviton type: the arm64 parameter was read, and that image launched.
    expect(aws.calls('GetParameter').at(-1)!.params.Name).toBe(
      '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64',
    );
    const run = aws.calls('RunInstances').at(-1)!.params;
    expect(aws.instance(instance.instanceId).architecture).toBe('arm64');
    expect(run['BlockDeviceMapping.1.Ebs.VolumeSize']).toBe('30');
    expect(run.KeyName).toBe(keyPairName);

    const group = aws.securityGroupByName('eu-west-1', 'slotdeck-build-box')!;
    expect(group.ingress.map((rule) => ({ ...rule, cidrs: rule.cidrs.map((c) => c.cidr) }))).toEqual([
      { protocol: 'tcp', from: 22, to: 22, cidrs: [`${MY_ADDRESS}/32`] },
    ]);
    expect(aws.instance(instance.instanceId).securityGroupIds).toEqual([group.id]);

    const host = (await ok('hosts:list', {})).hosts.find((h) => h.id === hostId)!;
    expect(host).toMatchObject({
      name: 'Build box',
      user: 'ec2-user',
      port: 22,
      address: instance.publicIp,
      auth: { method: 'key', storedKey: true },
      instance: { accountId, region: 'eu-west-1', instanceId: instance.instanceId },
    });
    const privateKey = await vault.get(`host/${hostId}/private-key`);
    expect(privateKey).toContain('PRIVATE KEY');
    // Every base64 line of the key (a short last line could occur anywhere by chance).
    const keyLines = privateKey!.split('\n').filter((line) => !line.startsWith('-----') && line.trim().length >= 16);
    expect(keyLines.length).toBeGreaterThanOrEqual(3);
    const files = filesUnder(dataDir)
      .filter((f) => !f.includes(`${join(dataDir, 'agents')}/`))
      .map((f) => [f, readFileSync(f, 'latin1')] as const);
    for (const line of keyLines) {
      for (const [file, content] of files) expect(content.includes(line), `${file} holds a key line`).toBe(false);
      expect(outputs.join('\n')).not.toContain(line);
      expect(logs.join('\n')).not.toContain(line);
    }

    // The idle minutes wait for the deploy, which applies them once (read and cleared).
    expect(core.settings.preference(`pendingIdle:${hostId}`)).toBe(60);
    expect(takePendingIdle(core.settings, hostId)).toBe(60);
    expect(takePendingIdle(core.settings, hostId)).toBeNull();

    const access = await ok('aws:ssh-access', { hostId });
    expect(access).toMatchObject({ allowed: true, myAddress: MY_ADDRESS });
  });

  it('keeps a new key pair when the launch fails after making it, and a second launch with that pair uses it', async () => {
    aws.fault('RunInstances', 'UnauthorizedOperation');
    const hostsBefore = (await ok('hosts:list', {})).hosts.length;
    const error = await fails('aws:launch', {
      accountId,
      region: 'eu-west-1',
      name: 'Retry box',
      instanceType: 't3.medium',
      image: 'ubuntu-24.04',
      diskGb: 20,
      keyPair: { mode: 'create', name: 'retry-pair' },
      idleStopMinutes: null,
    });
    expect(error.code).toBe('AWS_UNAUTHORIZED');
    expect(error.details?.action).toBe('ec2:RunInstances');
    expect(progress.at(-1)).toMatchObject({ phase: 'failed', instanceId: null });
    expect((await ok('hosts:list', {})).hosts).toHaveLength(hostsBefore);
    const kept = await vault.get(`aws/${accountId}/eu-west-1/key-pair/retry-pair`);
    expect(kept).toContain('PRIVATE KEY');

    const { hostId, instance } = await ok('aws:launch', {
      accountId,
      region: 'eu-west-1',
      name: 'Retry box',
      instanceType: 't3.medium',
      image: 'ubuntu-24.04',
      diskGb: 20,
      keyPair: { mode: 'existing', name: 'retry-pair' },
      idleStopMinutes: null,
    });
    expect(instance.suggestedUser).toBe('ubuntu');
    expect(await vault.get(`host/${hostId}/private-key`)).toBe(`${kept!.trim()}\n`);
    expect(await vault.get(`aws/${accountId}/eu-west-1/key-pair/retry-pair`)).toBeNull();
    // The group made by the first try is reused, still with its one rule.
    const group = aws.securityGroupByName('eu-west-1', 'slotdeck-retry-box')!;
    expect(group.ingress.flatMap((rule) => rule.cidrs.map((c) => c.cidr))).toEqual([`${MY_ADDRESS}/32`]);
    expect((await ok('hosts:list', {})).hosts.find((h) => h.id === hostId)).toMatchObject({
      user: 'ubuntu',
      auth: { storedKey: true },
    });
  });

  it('stops waiting for a launch when cancelled, keeping the linked profile for Start and connect', async () => {
    aws.options.transitions.pendingMs = 60_000;
    progress.length = 0;
    const answer = call(
      'aws:launch',
      {
        accountId,
        region: 'eu-west-1',
        name: 'Cancelled box',
        instanceType: 't3.small',
        image: 'al2023',
        diskGb: 8,
        keyPair: { mode: 'create', name: 'cancelled-pair' },
        idleStopMinutes: null,
      },
      'req-launch',
    );
    const pending = (await until('the launched instance', () => progress.find((p) => p.phase === 'pending')))!;
    core.dispatcher.cancel('req-launch');
    const result = await answer;
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('IPC_CANCELLED');
    expect(progress.at(-1)).toMatchObject({ phase: 'cancelled', instanceId: pending.instanceId });
    const host = (await ok('hosts:list', {})).hosts.find((h) => h.name === 'Cancelled box')!;
    expect(host.instance?.instanceId).toBe(pending.instanceId);
    expect(host.auth?.storedKey).toBe(true);
    expect(aws.instance(pending.instanceId!).state).toBe('pending');
  });

  it('reuses the private key kept in the keychain when a retry makes the same new key pair again (stand-in)', async () => {
    aws.fault('RunInstances', 'UnauthorizedOperation');
    const launch = {
      accountId,
      region: 'eu-west-1',
      name: 'Again box',
      instanceType: 't3.small',
      image: 'al2023',
      diskGb: 8,
      keyPair: { mode: 'create', name: 'again-pair' },
      idleStopMinutes: null,
    } as const;
    expect((await fails('aws:launch', launch)).code).toBe('AWS_UNAUTHORIZED');
    const kept = await vault.get(`aws/${accountId}/eu-west-1/key-pair/again-pair`);
    expect(kept).toContain('PRIVATE KEY');
    progress.length = 0;
    // The form still says "New key pair": AWS answers Duplicate, and the kept key is used.
    const { hostId } = await ok('aws:launch', launch);
    expect(progress.map((p) => p.message).join('\n')).toContain(
      'Key pair again-pair exists from an earlier launch; reusing its private key kept in the keychain.',
    );
    expect(await vault.get(`host/${hostId}/private-key`)).toBe(`${kept!.trim()}\n`);
    expect(await vault.get(`aws/${accountId}/eu-west-1/key-pair/again-pair`)).toBeNull();
  });

  it('cancelled while AWS carries out RunInstances: the instance is named as running and billed, profile and key kept (stand-in)', async () => {
    const held = aws.hold('RunInstances');
    progress.length = 0;
    const answer = call(
      'aws:launch',
      {
        accountId,
        region: 'eu-west-1',
        name: 'Held box',
        instanceType: 't3.small',
        image: 'al2023',
        diskGb: 8,
        keyPair: { mode: 'create', name: 'held-pair' },
        idleStopMinutes: 30,
      },
      'req-held-run',
    );
    await held.reached;
    core.dispatcher.cancel('req-held-run');
    held.release();
    const result = await answer;
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('IPC_CANCELLED');
    const launched = [...aws.instances.values()].find((i) => i.tags.Name === 'Held box')!;
    expect(launched).toBeDefined();
    expect(result.error.message).toContain(`instance ${launched.id} was already launched`);
    expect(result.error.message).toContain('billed');
    expect(progress.at(-1)).toMatchObject({ phase: 'cancelled', instanceId: launched.id });
    const host = (await ok('hosts:list', {})).hosts.find((h) => h.name === 'Held box')!;
    expect(host.instance?.instanceId).toBe(launched.id);
    expect(host.auth?.storedKey).toBe(true);
    expect(await vault.get(`host/${host.id}/private-key`)).toContain('PRIVATE KEY');
    expect(core.settings.preference(`pendingIdle:${host.id}`)).toBe(30);
  });

  it('names the running instance when the launch fails after RunInstances (a host of that name appeared meanwhile; stand-in)', async () => {
    const held = aws.hold('RunInstances');
    const answer = call('aws:launch', {
      accountId,
      region: 'eu-west-1',
      name: 'Raced box',
      instanceType: 't3.small',
      image: 'al2023',
      diskGb: 8,
      keyPair: { mode: 'create', name: 'raced-pair' },
      idleStopMinutes: null,
    });
    await held.reached;
    await ok('hosts:create', { name: 'Raced box', address: '192.0.2.7', user: 'root', auth: { method: 'agent' } });
    held.release();
    const result = await answer;
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const launched = [...aws.instances.values()].find((i) => i.tags.Name === 'Raced box')!;
    expect(result.error.code).toBe('HOST_NAME_TAKEN');
    expect(result.error.message).toContain(`Instance ${launched.id} was launched and is running in AWS`);
    expect(progress.at(-1)).toMatchObject({ phase: 'failed', instanceId: launched.id });
  });

  it('cancelled while AWS makes the key pair: its private key is kept in the keychain and nothing is launched (stand-in)', async () => {
    const held = aws.hold('CreateKeyPair');
    const runsBefore = aws.calls('RunInstances').length;
    const answer = call(
      'aws:launch',
      {
        accountId,
        region: 'eu-west-1',
        name: 'Key held box',
        instanceType: 't3.small',
        image: 'al2023',
        diskGb: 8,
        keyPair: { mode: 'create', name: 'key-held-pair' },
        idleStopMinutes: null,
      },
      'req-held-key',
    );
    await held.reached;
    core.dispatcher.cancel('req-held-key');
    held.release();
    const result = await answer;
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('IPC_CANCELLED');
    expect(result.error.message).toContain('Cancelled before an instance was launched.');
    expect(result.error.message).toContain('Key pair key-held-pair was made in AWS');
    expect(await vault.get(`aws/${accountId}/eu-west-1/key-pair/key-held-pair`)).toContain('PRIVATE KEY');
    expect(aws.calls('RunInstances')).toHaveLength(runsBefore);
    expect((await ok('hosts:list', {})).hosts.some((h) => h.name === 'Key held box')).toBe(false);
  });

  it('refuses to reuse a security group that lets more than one address in, or that Slotdeck did not make (stand-in)', async () => {
    const launch = (name: string) =>
      ({
        accountId,
        region: 'eu-west-1',
        name,
        instanceType: 't3.small',
        image: 'al2023',
        diskGb: 8,
        keyPair: { mode: 'create', name: `${name.toLowerCase().replace(/ /g, '-')}-pair` },
        idleStopMinutes: null,
      }) as const;
    const runsBefore = aws.calls('RunInstances').length;
    const open = aws.addSecurityGroup('eu-west-1', {
      name: 'slotdeck-open-box',
      tags: { slotdeck: 'Open box' },
      ingress: [{ protocol: 'tcp', from: 22, to: 22, cidrs: [{ cidr: '0.0.0.0/0' }] }],
    });
    const refused = await fails('aws:launch', launch('Open box'));
    expect(refused.code).toBe('AWS_LAUNCH_FAILED');
    expect(refused.message).toContain(`slotdeck-open-box (${open.id})`);
    expect(refused.message).toContain('tcp 22-22 from 0.0.0.0/0');

    const foreign = aws.addSecurityGroup('eu-west-1', { name: 'slotdeck-foreign-box' });
    const untagged = await fails('aws:launch', launch('Foreign box'));
    expect(untagged.code).toBe('AWS_LAUNCH_FAILED');
    expect(untagged.message).toContain(`slotdeck-foreign-box (${foreign.id})`);
    expect(untagged.message).toContain('slotdeck=Foreign box');
    expect(aws.calls('RunInstances')).toHaveLength(runsBefore);
    // Nothing changed in either group.
    expect(aws.securityGroups.get(open.id)!.ingress).toHaveLength(1);
    expect(aws.securityGroups.get(foreign.id)!.ingress).toHaveLength(0);

    // A group of that name in another VPC is not the one: a new one is made in the default VPC.
    const elsewhere = aws.addSecurityGroup('eu-west-1', {
      name: 'slotdeck-elsewhere-box',
      vpcId: 'vpc-0other',
      tags: { slotdeck: 'Elsewhere box' },
      ingress: [{ protocol: 'tcp', from: 22, to: 22, cidrs: [{ cidr: '0.0.0.0/0' }] }],
    });
    const { instance } = await ok('aws:launch', launch('Elsewhere box'));
    const groupIds = aws.instance(instance.instanceId).securityGroupIds;
    expect(groupIds).not.toContain(elsewhere.id);
    const made = aws.securityGroups.get(groupIds[0]!)!;
    expect(made).toMatchObject({ name: 'slotdeck-elsewhere-box', tags: { slotdeck: 'Elsewhere box' } });
    expect(made.vpcId).not.toBe('vpc-0other');
    expect(made.ingress.flatMap((rule) => rule.cidrs.map((c) => c.cidr))).toEqual([`${MY_ADDRESS}/32`]);
  });

  it('fails the launch before making anything when the image root device is unknown (stand-in)', async () => {
    const parameter = `eu-west-1${AMI_PARAMETERS.ubuntuArm64}`;
    const usual = aws.parameters.get(parameter)!;
    const rootless = aws.addImage('eu-west-1', {
      name: 'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-rootless',
      ownerId: '099720109477',
      architecture: 'arm64',
      rootDeviceName: '',
      platformDetails: 'Linux/UNIX',
    });
    aws.parameters.set(parameter, rootless.id);
    const keysBefore = aws.calls('CreateKeyPair').length;
    try {
      const error = await fails('aws:launch', {
        accountId,
        region: 'eu-west-1',
        name: 'Rootless box',
        instanceType: 't4g.small',
        image: 'ubuntu-24.04',
        diskGb: 40,
        keyPair: { mode: 'create', name: 'rootless-pair' },
        idleStopMinutes: null,
      });
      expect(error.code).toBe('AWS_LAUNCH_FAILED');
      expect(error.message).toContain(`root device of image ${rootless.id}`);
      expect(aws.calls('CreateKeyPair')).toHaveLength(keysBefore);
    } finally {
      aws.parameters.set(parameter, usual);
    }
  });

  it('the stand-in refuses a malformed CidrIp with InvalidParameterValue, as AWS does', async () => {
    const client = new EC2Client({ region: 'eu-west-1', endpoint: aws.url, credentials: FAKE_AWS_CREDENTIALS });
    const group = aws.addSecurityGroup('eu-west-1', { name: 'cidr-check' });
    try {
      for (const cidr of ['10.0.0.0/33', '256.1.1.1/32', '10.0.0.1', '10.0.0/24']) {
        const error = await client
          .send(
            new AuthorizeSecurityGroupIngressCommand({
              GroupId: group.id,
              IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: cidr }] }],
            }),
          )
          .then(
            () => null,
            (e: Error) => e,
          );
        expect(error?.name, cidr).toBe('InvalidParameterValue');
      }
      expect(aws.securityGroups.get(group.id)!.ingress).toEqual([]);
    } finally {
      client.destroy();
    }
  });

  it('warns when the instance security groups do not let this computer in', async () => {
    const box = aws.addInstance('eu-west-1', { name: 'closed' });
    const host = await ok('hosts:create', {
      name: 'closed',
      address: '192.0.2.1',
      user: 'ec2-user',
      auth: { method: 'agent' },
    });
    await ok('aws:link-host', { hostId: host.id, instance: { accountId, region: 'eu-west-1', instanceId: box.id } });
    const access = await ok('aws:ssh-access', { hostId: host.id });
    expect(access.allowed).toBe(false);
    expect(access.detail).toContain(`${MY_ADDRESS}/32`);
  });

  it('looks the address up at every connect: a stopped and started instance has a new public IP', async () => {
    nextIps.push('127.0.0.9');
    const box = aws.addInstance('eu-west-1', { name: 'moving', state: 'stopped' });
    const ref = { accountId, region: 'eu-west-1', instanceId: box.id };
    await ok('aws:instance-action', { ...ref, action: 'start' });
    const host = await ok('hosts:create', {
      name: 'moving',
      address: '127.0.0.9',
      port: sshd.port,
      user: 'root',
      auth: { method: 'key', privateKey: sshd.clientKey },
      agentPort: Number(new URL(remote.url).port),
      agentCommand: `${process.execPath} ${AGENT_CLI} --data-dir ${remote.dataDir}`,
    });
    await ok('aws:link-host', { hostId: host.id, instance: ref });
    expect((await ok('hosts:list', {})).hosts.find((h) => h.id === host.id)!.address).toBe('127.0.0.9');

    await ok('aws:instance-action', { ...ref, action: 'stop' });
    const stoppedError = await fails('hosts:connect', { id: host.id });
    expect(stoppedError.code).toBe('AWS_INSTANCE_STATE');
    expect(stoppedError.message).toContain('stopped');

    nextIps.push('127.0.0.1');
    await ok('aws:instance-action', { ...ref, action: 'start' });
    // The profile still holds the old address; connecting reaches the new one (the sshd asks to trust its key).
    const first = await fails('hosts:connect', { id: host.id });
    expect(first.code).toBe('HOST_KEY_UNKNOWN');
    expect(first.details?.fingerprint).toBe(sshd.fingerprint);
    const trusted = await ok('hosts:trust-key', { id: host.id, fingerprint: sshd.fingerprint });
    expect(trusted).toMatchObject({ address: '127.0.0.1', status: { state: 'connected' } });
    await ok('hosts:disconnect', { id: host.id });

    // Start and connect: the instance is stopped, started (with its progress), and the host connected.
    await ok('aws:instance-action', { ...ref, action: 'stop' });
    nextIps.push('127.0.0.1');
    progress.length = 0;
    await ok('hosts:start-and-connect', { id: host.id });
    expect(phasesOf(box.id)).toEqual(['requested', 'pending', 'running', 'status-checks', 'ready']);
    const connected = (await ok('hosts:list', {})).hosts.find((h) => h.id === host.id)!;
    expect(connected.status.state).toBe('connected');
    await ok('hosts:disconnect', { id: host.id });

    // AWS out of reach: the last known address is tried rather than refusing to connect.
    aws.fault('DescribeInstances', 'ConnectionReset', { times: 3 });
    const offline = await ok('hosts:connect', { id: host.id });
    expect(offline).toMatchObject({ address: '127.0.0.1', status: { state: 'connected' } });
    expect(logs.join('\n')).toContain('trying the last known address 127.0.0.1');
    await ok('hosts:disconnect', { id: host.id });

    // The instance comes back at an address served by a machine with another host key: refused, not trusted.
    await ok('aws:instance-action', { ...ref, action: 'stop' });
    const pinned = sshd.fingerprint;
    await sshd.restart({ newHostKey: true });
    expect(sshd.fingerprint).not.toBe(pinned);
    nextIps.push('127.0.0.1');
    await ok('aws:instance-action', { ...ref, action: 'start' });
    const mismatch = await fails('hosts:connect', { id: host.id });
    expect(mismatch.code).toBe('HOST_KEY_MISMATCH');
    expect(mismatch.details?.fingerprint).toBe(sshd.fingerprint);
    expect((await ok('hosts:list', {})).hosts.find((h) => h.id === host.id)!.status.state).not.toBe('connected');
  });

  it('refuses start-and-connect for a host with no instance', async () => {
    const host = await ok('hosts:create', {
      name: 'plain',
      address: '192.0.2.2',
      user: 'root',
      auth: { method: 'agent' },
    });
    expect((await fails('hosts:start-and-connect', { id: host.id })).code).toBe('HOST_NOT_LINKED');
  });
});
