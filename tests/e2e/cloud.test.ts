import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_AWS_CREDENTIALS, FakeEc2, type FakeInstance } from '../integration/fixtures/fake-ec2.js';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { PanelProcess } from './helpers/panel.js';

/**
 * The Cloud view as an admin meets it, against the EC2 stand-in (the real AWS SDK in the panel talks to it through
 * an endpoint override): add an account with a pasted access key, see its instances, start one and watch it go
 * pending → running → status checks → ready, see a refused stop name the missing IAM action, launch a new host.
 */
const keychain = Boolean(process.env.DBUS_SESSION_BUS_ADDRESS);

let browser: Browser;
let panel: PanelProcess;
let aws: FakeEc2;
let page: Page;
let awsDir = '';
let stopped: FakeInstance;
let running: FakeInstance;

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const row = (id: string) => page.locator(`tr[data-instance-id="${id}"]`);
const progressRow = (id: string) => page.locator(`tr[data-instance-id="${id}"] + tr.cloud-progress-row`);

beforeAll(async () => {
  [browser, aws] = await Promise.all([
    launchChromium(),
    // Slow enough transitions that each phase is on screen for a moment.
    FakeEc2.start({ transitions: { pendingMs: 1500, statusInitMs: 1500, stoppingMs: 1000 } }),
  ]);
  stopped = aws.addInstance('eu-west-1', { name: 'build-box', state: 'stopped', type: 't3.large', keyName: 'work' });
  running = aws.addInstance('eu-west-1', { name: 'web', state: 'running', keyName: 'work' });
  // No profile of this machine's ~/.aws may leak in: empty config files of the test's own.
  awsDir = mkdtempSync(join(tmpdir(), 'sd-aws-'));
  writeFileSync(join(awsDir, 'config'), '');
  writeFileSync(join(awsDir, 'credentials'), '');
  panel = await PanelProcess.start({
    SLOTDECK_AWS_ENDPOINT: aws.url,
    SLOTDECK_AWS_CHECKIP_URL: aws.checkIpUrl,
    SLOTDECK_AWS_WAITER_DELAY_S: '1',
    AWS_CONFIG_FILE: join(awsDir, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(awsDir, 'credentials'),
    ...(keychain ? {} : { SLOTDECK_MASTER_KEY: 'e2e-master-key' }),
  });
  page = await panel.open(browser);
  await page.getByTestId('connection-status').filter({ hasText: 'This computer: connected' }).waitFor();
});

afterAll(async () => {
  await browser?.close();
  await panel?.destroy();
  await aws?.stop();
  if (awsDir) rmSync(awsDir, { recursive: true, force: true });
});

describe('the Cloud view against the EC2 stand-in (Chromium, browser mode)', () => {
  it('adds an account from a pasted access key, and never shows the secret again', async () => {
    await page.getByRole('navigation', { name: 'Views' }).getByRole('button', { name: 'Cloud', exact: true }).click();
    await page.getByText('No AWS account yet.').waitFor();
    await page.getByRole('button', { name: '+ AWS account' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add an AWS account' });
    await dialog.getByText('Paste an access key').click();
    await dialog.getByLabel('Name', { exact: true }).fill('work');
    await dialog.getByLabel('Access key ID').fill(FAKE_AWS_CREDENTIALS.accessKeyId);
    await dialog.getByLabel('Secret access key').fill(FAKE_AWS_CREDENTIALS.secretAccessKey);
    await dialog.getByRole('checkbox', { name: /^eu-west-1/ }).check();
    await shot('cloud-add-account');
    await dialog.getByRole('button', { name: 'Add account' }).click();
    await dialog.waitFor({ state: 'detached' });

    const section = page.getByRole('region', { name: 'AWS account work' });
    await section.waitFor();
    // The account says which key it uses by its hint only.
    expect(await section.locator('.cloud-account-header .muted').innerText()).toMatch(
      /^access key AKIA…\w{4} · eu-west-1/,
    );
    await section.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit work' });
    await edit.getByText(/in the keychain/).waitFor();
    expect(await page.content()).not.toContain(FAKE_AWS_CREDENTIALS.secretAccessKey);
    await edit.getByRole('button', { name: 'Cancel' }).click();
  });

  it('lists the instances of the account’s regions, with state, type, zone and address', async () => {
    await row(stopped.id).waitFor();
    await expect(row(stopped.id).getByTestId('instance-state').innerText()).resolves.toBe('stopped');
    await expect(row(stopped.id).innerText()).resolves.toContain('t3.large');
    await expect(row(running.id).getByTestId('instance-state').innerText()).resolves.toBe('running');
    await expect(row(running.id).innerText()).resolves.toContain(aws.instance(running.id).publicIp!);
    await expect(row(running.id).innerText()).resolves.toContain('eu-west-1a');
    await shot('cloud-instances-light');
  });

  it('starts a stopped instance and shows it going pending → running → status checks → ready', async () => {
    await row(stopped.id).getByRole('button', { name: 'Start' }).click();
    const steps = progressRow(stopped.id).locator('.cloud-step');
    // A phase before the last is on screen as the current one at some point.
    await progressRow(stopped.id).locator('.cloud-step[data-state="current"]').first().waitFor();
    await shot('cloud-start-progress');
    await progressRow(stopped.id)
      .locator('.cloud-step', { hasText: 'Ready' })
      .and(page.locator('[data-state="done"]'))
      .waitFor({ timeout: 45_000 });
    expect(await steps.evaluateAll((items) => items.map((item) => item.getAttribute('data-state')))).toEqual([
      'done',
      'done',
      'done',
      'done',
    ]);
    await row(stopped.id)
      .getByTestId('instance-state')
      .filter({ hasText: /^running$/ })
      .waitFor();
    expect(aws.instance(stopped.id).state).toBe('running');
    await row(stopped.id).getByText(aws.instance(stopped.id).publicIp!).waitFor();
    await progressRow(stopped.id).getByRole('button', { name: 'Dismiss' }).click();
    await progressRow(stopped.id).waitFor({ state: 'detached' });
  });

  it('shows a refused stop with the IAM action the credentials lack, and the instance keeps running', async () => {
    aws.fault('StopInstances', 'UnauthorizedOperation', {
      message:
        'You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/panel is not authorized to perform: ec2:StopInstances on resource: instance',
    });
    await row(running.id).getByRole('button', { name: 'Stop' }).click();
    await page.getByRole('dialog', { name: 'Stop web?' }).getByRole('button', { name: 'Stop instance' }).click();
    const error = progressRow(running.id).locator('.form-error');
    await error.waitFor();
    expect(await error.innerText()).toContain('ec2:StopInstances');
    await shot('cloud-stop-refused');
    expect(aws.instance(running.id).state).toBe('running');
    await progressRow(running.id).getByRole('button', { name: 'Dismiss' }).click();
  });

  it('launches a new host from the short form, following it until ready, with SSH allowed from this address only', async () => {
    const section = page.getByRole('region', { name: 'AWS account work' });
    await section.getByRole('button', { name: 'Launch a host…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Launch a host in work' });
    await dialog.getByTestId('launch-address').filter({ hasText: aws.options.myAddress }).waitFor();
    await dialog.getByLabel('Name', { exact: true }).fill('claude-1');
    await shot('cloud-launch-form');
    await dialog.getByRole('button', { name: 'Launch' }).click();
    await dialog.getByTestId('instance-progress').waitFor();
    await shot('cloud-launch-progress');
    await dialog.getByTestId('launch-done').waitFor({ timeout: 45_000 });
    await dialog.getByRole('button', { name: 'Deploy the agent' }).waitFor();
    await shot('cloud-launch-done');

    const launched = [...aws.instances.values()].find((i) => i.tags.Name === 'claude-1');
    expect(launched).toBeDefined();
    expect(launched!.tags.slotdeck).toBe('claude-1');
    const group = [...aws.securityGroups.values()].find((g) => launched!.securityGroupIds.includes(g.id));
    const ssh = group?.ingress.find((rule) => rule.from === 22);
    expect(ssh?.cidrs.map((c) => c.cidr)).toEqual([`${aws.options.myAddress}/32`]);
    await dialog.locator('.dialog-footer').getByRole('button', { name: 'Close' }).click();
    // The new instance is in the list, linked to the host profile made for it (also in the host list).
    await row(launched!.id).getByText('claude-1').first().waitFor();
    await row(launched!.id).locator('.cloud-linked', { hasText: 'claude-1' }).waitFor();
    await page.locator('.sidebar').getByText('claude-1').first().waitFor();
  });

  it('makes a host profile from an instance (its image’s user suggested), whose settings show the link and the SSH warning', async () => {
    await row(stopped.id).getByRole('button', { name: 'Create host profile' }).click();
    const dialog = page.getByRole('dialog', { name: 'Host profile for build-box' });
    await expect(dialog.getByRole('textbox', { name: 'User' }).inputValue()).resolves.toBe('ec2-user');
    await expect(dialog.getByRole('textbox', { name: 'Key file' }).inputValue()).resolves.toBe('~/.ssh/work.pem');
    // The key pair's private key, where this computer keeps it (the dialog checks the file).
    const keyFile = join(awsDir, 'work.pem');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
    await dialog.getByRole('textbox', { name: 'Key file' }).fill(keyFile);
    await dialog.getByRole('textbox', { name: 'User' }).fill('admin');
    await shot('cloud-create-profile');
    await dialog.getByRole('button', { name: 'Create host profile' }).click();
    await dialog.getByRole('button', { name: 'Deploy the agent' }).waitFor();
    await dialog.locator('.dialog-footer').getByRole('button', { name: 'Close' }).click();
    await row(stopped.id).locator('.cloud-linked', { hasText: 'build-box' }).waitFor();

    // The SSH host's settings: linked to the instance, and the stand-in's default group lets no SSH in from here.
    // The linked profile's name in the row opens its settings.
    await row(stopped.id).locator('.cloud-linked').getByRole('button', { name: 'build-box' }).click();
    const settings = page.getByRole('dialog', { name: 'Edit build-box' });
    await expect(settings.getByLabel('User', { exact: true }).inputValue()).resolves.toBe('admin');
    await expect(settings.getByLabel('EC2 instance').inputValue()).resolves.toBe(stopped.id);
    await expect(settings.getByLabel('AWS account').locator('option:checked').innerText()).resolves.toBe('work');
    await settings.getByTestId('ssh-access-warning').waitFor();
    expect(await settings.getByTestId('ssh-access-warning').innerText()).toContain(aws.options.myAddress);
    await settings.locator('.dialog-body').evaluate((body) => body.scrollTo(0, body.scrollHeight));
    await shot('cloud-host-settings-link');
    await settings.getByRole('button', { name: 'Cancel' }).click();

    // The launched host's group lets this address in: no warning there, the rule that allows it instead.
    await page.getByRole('button', { name: 'Edit claude-1' }).click();
    const launched = page.getByRole('dialog', { name: 'Edit claude-1' });
    await launched.locator('.cloud-link-field .hint', { hasText: `${aws.options.myAddress}/32` }).waitFor();
    expect(await launched.getByTestId('ssh-access-warning').count()).toBe(0);
    await launched.getByRole('button', { name: 'Cancel' }).click();
  });

  it('looks clean in the dark theme too', async () => {
    await page.getByRole('button', { name: /^Theme: / }).click();
    await page.locator('html[data-theme="dark"]').waitFor();
    await shot('cloud-instances-dark');
    const section = page.getByRole('region', { name: 'AWS account work' });
    await section.getByRole('button', { name: 'Launch a host…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Launch a host in work' });
    await dialog.getByTestId('launch-address').filter({ hasText: aws.options.myAddress }).waitFor();
    await shot('cloud-launch-form-dark');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
  });
});
