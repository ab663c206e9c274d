import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, AgentProcess } from '../integration/helpers/agent.js';
import { DeployTestHost, derivedTarball, packAgent } from '../integration/helpers/deploy-host.js';
import { TestSshd } from '../integration/helpers/sshd.js';
import { ARTIFACTS, launchChromium } from './helpers/browser.js';
import { consoleText, PanelProcess } from './helpers/panel.js';

let browser: Browser;
let panel: PanelProcess;
let sshd: TestSshd;
let remote: AgentProcess;
/** The "remote host" of the deploy: a separate Unix account reached over its own sshd (single-user: no sudo). */
let target: DeployTestHost;
const V1 = '0.95.1';
const V2 = '0.95.2';
const tarballs: Record<string, string> = {};
/** The idle stop command's stand-in leaves this file behind when it runs. */
let scratch: string;
const keychain = Boolean(process.env.DBUS_SESSION_BUS_ADDRESS);

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'sd-idle-e2e-'));
  [browser, sshd, remote, target] = await Promise.all([
    launchChromium(),
    TestSshd.start(),
    AgentProcess.start({
      // Stand-in stop command: never the machine's shutdown.
      env: { SLOTDECK_AGENT_IDLE_STOP_COMMAND: JSON.stringify(['touch', join(scratch, 'stopped')]) },
    }),
    DeployTestHost.create(),
  ]);
  // The panel bundles V1; later "a new Slotdeck" bundles V2 (the same build under a bumped version).
  tarballs[V1] = await packAgent(join(target.work, 'tarballs'), V1);
  tarballs[V2] = derivedTarball(tarballs[V1], join(target.work, 'tarballs'), V2, () => undefined);
  panel = await PanelProcess.start({
    ...(keychain ? {} : { SLOTDECK_MASTER_KEY: 'e2e-master-key' }),
    SLOTDECK_DEPLOY_TARBALL: tarballs[V1],
    SLOTDECK_DEPLOY_HOST_ENV: JSON.stringify(target.npmEnv),
  });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await panel?.destroy();
  sshd?.stop();
  await remote?.destroy();
  await target?.destroy();
  rmSync(scratch, { recursive: true, force: true });
}, 180_000);

/** A screenshot in the light and in the dark theme (the panel follows the system's, as it does by default). */
async function shots(page: Page, name: string): Promise<void> {
  for (const theme of ['dark', 'light'] as const) {
    await page.emulateMedia({ colorScheme: theme });
    await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).toBe(theme);
    // xterm repaints its canvas on the next frames.
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    await page.screenshot({ path: join(ARTIFACTS, `${name}-${theme}.png`) });
  }
}

async function addSshHost(
  page: Page,
  name: string,
  agentCommand: string,
  agentPort: string,
  login: { port: number; user: string; key: string } = { port: sshd.port, user: 'root', key: sshd.clientKey },
): Promise<void> {
  await page.getByRole('button', { name: '+ Host' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add an SSH host' });
  await dialog.getByLabel('Name').fill(name);
  await dialog.getByLabel('Address').fill('127.0.0.1');
  await dialog.getByLabel('SSH port').fill(String(login.port));
  await dialog.getByLabel('User').fill(login.user);
  await dialog.getByLabel('Private key', { exact: true }).fill(login.key);
  await dialog.getByText('Agent on the host').click();
  await dialog.getByLabel('Agent port').fill(agentPort);
  await dialog.getByLabel('Agent command').fill(agentCommand);
  await dialog.getByRole('button', { name: 'Add and connect' }).click();
}

describe('idle auto-stop in the panel (Chromium, a real agent over SSH, a stand-in stop command)', () => {
  it('shows the countdown in the sidebar, warns in the host’s console in its last 5 minutes, and Keep awake postpones it', async () => {
    const page = await panel.open(browser);
    await addSshHost(
      page,
      'idle-host',
      `${process.execPath} ${AGENT_CLI} --data-dir ${remote.dataDir}`,
      new URL(remote.url).port,
    );
    const trust = page.getByRole('dialog', { name: 'Trust idle-host?' });
    await trust.getByRole('button', { name: 'Trust and connect' }).click();
    const host = page.getByRole('region', { name: 'idle-host' });
    await expect.poll(() => host.locator('.host-state').textContent(), { timeout: 20_000 }).toBe('connected');
    // The agent's version from its /health, next to the host.
    await expect.poll(() => host.getByTestId('agent-badge').textContent()).toMatch(/^agent \d+\.\d+\.\d+/);
    // Off by default: no countdown.
    expect(await host.getByTestId('idle-countdown').count()).toBe(0);

    // Host settings: a 1-minute policy.
    await host.getByRole('button', { name: 'Edit idle-host' }).click();
    const settings = page.getByRole('dialog', { name: 'Edit idle-host' });
    const idle = settings.getByRole('region', { name: 'Idle auto-stop' });
    await expect.poll(() => idle.getByTestId('idle-status').textContent()).toContain('Off');
    await idle.getByLabel('Stop the machine after').check();
    await idle.getByLabel('Idle minutes').fill('1');
    await idle.getByRole('button', { name: 'Save', exact: true }).click();
    await expect
      .poll(() => idle.getByTestId('idle-status').textContent())
      .toMatch(/Stops in (1 min|\d+ s) if nobody uses it/);
    await shots(page, 'idle-settings');
    await settings.getByRole('button', { name: 'Cancel' }).click();

    await expect.poll(() => host.getByTestId('idle-countdown').textContent()).toMatch(/^stops in (1 min|\d+ s)$/);

    // A console on that host: within the last 5 minutes it warns, with the way to postpone the stop.
    await host.getByRole('button', { name: '+ New slot' }).click();
    const create = page.getByRole('dialog', { name: /New slot on idle-host/ });
    await create.getByLabel('Name').fill('idle-console');
    await create.getByRole('button', { name: 'Create and open' }).click();
    await page.locator('.tab.active', { hasText: 'idle-console' }).waitFor();
    await expect.poll(() => consoleText(page), { timeout: 15_000 }).toMatch(/[#$]\s*$/m);
    const warning = page.locator('.console:not([hidden]) .idle-warning');
    await expect.poll(() => warning.textContent(), { timeout: 20_000 }).toMatch(/idle-host stops in 0:\d\d/);
    await shots(page, 'idle-console-warning');

    await warning.getByRole('button', { name: 'Keep awake for 1 h' }).click();
    await expect.poll(() => warning.count()).toBe(0);
    await expect.poll(() => host.getByTestId('idle-countdown').textContent()).toMatch(/^stops in (1 h|\d\d min)/);
    await shots(page, 'idle-kept-awake');
    // Postponed: the stand-in stop command never ran.
    expect(existsSync(join(scratch, 'stopped'))).toBe(false);
    await page.close();
  });

  it('offers to deploy the agent on a host that has none, and shows a connected host’s agent', async () => {
    const page = await panel.open(browser);
    // Nothing listens on this port and the command is not there: the host has no agent.
    await addSshHost(page, 'bare-host', '/nonexistent/slotdeck-agent', '1');
    const trust = page.getByRole('dialog', { name: 'Trust bare-host?' });
    await trust.getByRole('button', { name: 'Trust and connect' }).click();
    const host = page.getByRole('region', { name: 'bare-host' });
    await expect.poll(() => host.locator('.host-state').textContent(), { timeout: 20_000 }).toBe('failed');
    await host.getByRole('button', { name: 'Deploy the agent' }).waitFor();
    await shots(page, 'deploy-offered');

    // The connected host's agent dialog (opened from its version badge), and the uninstall question (not answered).
    const connected = page.getByRole('region', { name: 'idle-host' });
    await connected.getByTestId('agent-badge').click();
    const dialog = page.getByRole('dialog', { name: 'Agent on idle-host' });
    await expect.poll(() => dialog.getByTestId('agent-version').textContent()).toMatch(/^agent \d+\.\d+\.\d+/);
    await shots(page, 'agent-dialog');
    await dialog.locator('.dialog-footer').getByRole('button', { name: 'Close' }).click();
    await page.close();
  });
});

describe('deploying the agent from the panel (Chromium, OpenSSH to a separate Unix account, real PM2 and npm)', () => {
  const word = `kept-${Math.random().toString(36).slice(2, 8)}`;

  it('deploys to a host without an agent: the steps finish, it connects, and a console works there', async () => {
    const page = await panel.open(browser);
    await addSshHost(page, 'deploy-host', 'slotdeck-agent', String(target.adminPort), {
      port: target.sshd.port,
      user: target.user,
      key: target.sshd.clientKey,
    });
    await page
      .getByRole('dialog', { name: 'Trust deploy-host?' })
      .getByRole('button', { name: 'Trust and connect' })
      .click();
    const host = page.getByRole('region', { name: 'deploy-host' });
    // SSH works, and nothing answers on the agent's port.
    await expect.poll(() => host.locator('.host-error').textContent(), { timeout: 30_000 }).toMatch(/no agent answers/);
    await host.getByRole('button', { name: 'Deploy the agent' }).click();

    const dialog = page.getByRole('dialog', { name: 'Deploy the agent on deploy-host' });
    const job = dialog.locator('.deploy-job');
    // Followed live: a step runs, with its elapsed time.
    await dialog.locator('.deploy-step[data-state="running"] .deploy-step-elapsed').first().waitFor();
    await shots(page, 'deploy-running');
    await expect
      .poll(() => job.getAttribute('data-job-state'), { timeout: 600_000, interval: 1000 })
      .not.toBe('running');
    await shots(page, 'deploy-finished');
    expect(await job.getAttribute('data-job-state'), (await dialog.textContent()) ?? '').toBe('succeeded');
    const states = await dialog
      .locator('.deploy-step')
      .evaluateAll((steps) =>
        steps.map((step) => `${step.getAttribute('data-step')}:${step.getAttribute('data-state')}`),
      );
    expect(states.filter((s) => !/:(done|skipped)$/.test(s))).toEqual([]);
    expect(states).toContain('upload:done');
    await dialog.locator('.dialog-footer').getByRole('button', { name: 'Close' }).click();

    await expect.poll(() => host.locator('.host-state').textContent(), { timeout: 30_000 }).toBe('connected');
    await expect.poll(() => host.getByTestId('agent-badge').textContent()).toBe(`agent ${V1}`);
    await host.getByRole('button', { name: '+ New slot' }).click();
    const create = page.getByRole('dialog', { name: /New slot on deploy-host/ });
    await create.getByLabel('Name').fill('deployed');
    await create.getByRole('button', { name: 'Create and open' }).click();
    await page.locator('.tab.active', { hasText: 'deployed' }).waitFor();
    await expect.poll(() => consoleText(page), { timeout: 20_000 }).toMatch(/[#$]\s*$/m);
    await page.locator('.console:not([hidden]) .xterm-helper-textarea').focus();
    await page.keyboard.type(`echo ${word}-$(whoami)`);
    await page.keyboard.press('Enter');
    await expect.poll(() => consoleText(page)).toContain(`${word}-${target.user}`);
    await page.close();
  }, 900_000);

  it('a Slotdeck that bundles a newer agent offers Update agent; the update survives a reload of the page, keeps the console and changes the version', async () => {
    // "A new Slotdeck": the same panel data, restarted with the bumped build bundled.
    await panel.stop();
    panel.env.SLOTDECK_DEPLOY_TARBALL = tarballs[V2]!;
    await panel.launch();
    const page = await panel.open(browser);
    const host = page.getByRole('region', { name: 'deploy-host' });
    if ((await host.locator('.host-state').textContent()) !== 'connected')
      await host.getByRole('button', { name: 'Connect deploy-host' }).click();
    await expect.poll(() => host.locator('.host-state').textContent(), { timeout: 30_000 }).toBe('connected');
    await expect.poll(() => host.getByTestId('agent-badge').textContent()).toBe(`agent ${V1}`);
    await host.getByRole('button', { name: 'Update agent' }).click();

    const dialog = page.getByRole('dialog', { name: 'Update the agent on deploy-host' });
    const job = dialog.locator('.deploy-job');
    // A reload while it runs: the job goes on in Slotdeck, and the page comes back to its steps.
    await dialog.locator('.deploy-step[data-state="running"]').first().waitFor();
    await page.reload();
    await page.locator('.shell[data-ready="true"]').waitFor();
    await dialog.locator('.deploy-step').first().waitFor();
    await expect
      .poll(() => job.getAttribute('data-job-state'), { timeout: 600_000, interval: 1000 })
      .not.toBe('running');
    await shots(page, 'upgrade-finished');
    expect(await job.getAttribute('data-job-state'), (await dialog.textContent()) ?? '').toBe('succeeded');
    expect(await dialog.locator('.deploy-job-header').textContent()).toContain(`${V1} → ${V2}`);
    // The dialog now offers going back to V1.
    await dialog.getByRole('button', { name: 'Roll back…' }).click();
    const rollback = page.getByRole('dialog', { name: 'Roll back the agent on deploy-host?' });
    await rollback.getByRole('button', { name: `Roll back to ${V1}` }).waitFor();
    await shots(page, 'rollback-confirm');
    await rollback.getByRole('button', { name: 'Cancel' }).click();
    // Cancel goes back to the job it came from.
    await dialog.getByRole('button', { name: 'Uninstall…' }).click();
    const uninstall = page.getByRole('dialog', { name: 'Uninstall the agent from deploy-host?' });
    await uninstall.getByLabel('Also delete every slot and all users, keys and usage').check();
    const remove = uninstall.getByRole('button', { name: 'Uninstall and delete data' });
    expect(await remove.isDisabled()).toBe(true);
    await uninstall.getByLabel('Type deploy-host to confirm').fill('deploy-host');
    expect(await remove.isDisabled()).toBe(false);
    await shots(page, 'uninstall-confirm');
    await uninstall.getByRole('button', { name: 'Cancel' }).click();
    await dialog.locator('.dialog-footer').getByRole('button', { name: 'Close' }).click();

    await expect.poll(() => host.getByTestId('agent-badge').textContent(), { timeout: 30_000 }).toBe(`agent ${V2}`);
    expect(await host.getByRole('button', { name: 'Update agent' }).count()).toBe(0);
    // The console of the slot made before the update is back, with what it showed, and still takes input.
    await page.locator('.tab', { hasText: 'deployed' }).locator('.tab-label').click();
    await expect.poll(() => consoleText(page), { timeout: 30_000 }).toContain(`${word}-${target.user}`);
    await page.locator('.console:not([hidden]) .xterm-helper-textarea').focus();
    await page.keyboard.type(`echo after-$((6*7))`);
    await page.keyboard.press('Enter');
    await expect.poll(() => consoleText(page), { timeout: 20_000 }).toContain('after-42');
    await shots(page, 'upgraded-console');
    await page.close();
  }, 900_000);
});
