import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../remote-agent/src/config.js';
import { ARTIFACTS } from './helpers/browser.js';
import { panelInChromium } from './helpers/panel.js';

const PM2_CLI = resolve(import.meta.dirname, '../../remote-agent/node_modules/pm2/bin/pm2');
const session = panelInChromium();
let pm2Home = '';

/** The local agent's own PM2 (the one that runs its slots), through PM2's CLI. */
const pm2 = (args: string[]): void => {
  const result = spawnSync(process.execPath, [PM2_CLI, ...args], {
    env: { ...process.env, PM2_HOME: pm2Home },
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`pm2 ${args.join(' ')}: ${result.stdout}${result.stderr}`);
};

beforeAll(() => {
  pm2Home = loadConfig({ env: { SLOTDECK_AGENT_DATA_DIR: join(session.panel.dataDir, 'agents', 'local') } }).pm2Home;
});

afterAll(() => {
  if (pm2Home)
    spawnSync(process.execPath, [PM2_CLI, 'delete', 'e2e-log-writer'], { env: { ...process.env, PM2_HOME: pm2Home } });
});

const shot = (name: string): Promise<Buffer> => session.page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
const view = (name: string) =>
  session.page.getByRole('navigation', { name: 'Views' }).getByRole('button', { name, exact: true });

describe('logs (Chromium, browser mode, the local agent)', () => {
  it('shows a slot’s PM2 output as it is written, narrows it by text, and downloads it', async () => {
    await session.page.getByRole('button', { name: '+ New slot' }).first().click();
    const create = session.page.getByRole('dialog', { name: /New slot on This computer/ });
    await create.getByLabel('Name').fill('logdemo');
    await create.getByRole('button', { name: 'Create and open' }).click();
    await create.waitFor({ state: 'detached' });

    await view('Logs').click();
    const logs = session.page.getByRole('main', { name: 'Logs' });
    const source = logs.getByRole('combobox', { name: 'Log' });
    const option = source.locator('option', { hasText: 'logdemo (output)' });
    await option.waitFor({ state: 'attached' });
    const sourceId = (await option.getAttribute('value'))!;
    expect(sourceId).toMatch(/^slot-[a-z0-9]{10}\.out$/);
    const outLog = join(session.panel.dataDir, 'agents', 'local', 'logs', `${sourceId}.log`);
    // The slot's PM2 output: PM2 writes a program's stdout into that file (with its time prefix), as it does for the
    // slot's holder; a line every 100 ms, every fifth a checkpoint.
    pm2([
      'start',
      '/bin/sh',
      '--name',
      'e2e-log-writer',
      '--time',
      '--output',
      outLog,
      '--error',
      `${outLog}.stderr`,
      '--',
      '-c',
      'i=0; while :; do i=$((i+1)); echo "tick $i"; [ $((i % 5)) = 0 ] && echo "checkpoint-e2e $i"; sleep 0.1; done',
    ]);
    await source.selectOption(sourceId);

    const lines = logs.getByRole('log', { name: 'Log lines' }).locator('.log-line');
    // Follow is on: lines written after the view opened arrive by themselves.
    await expect.poll(() => lines.count(), { timeout: 15_000 }).toBeGreaterThan(20);
    await logs.getByRole('log').getByText('checkpoint-e2e 5', { exact: true }).waitFor();
    const everything = await lines.count();

    await logs.getByRole('searchbox', { name: 'Filter text' }).fill('checkpoint');
    await logs.getByRole('searchbox', { name: 'Filter text' }).press('Enter');
    await expect.poll(async () => (await lines.allInnerTexts()).every((t) => t.includes('checkpoint-e2e'))).toBe(true);
    const narrowed = await lines.count();
    expect(narrowed).toBeGreaterThan(0);
    expect(narrowed).toBeLessThan(everything);
    await shot('logs-slot-output-filtered');

    const [download] = await Promise.all([
      session.page.waitForEvent('download'),
      logs.getByRole('button', { name: 'Download' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`local-${sourceId}.log`);
    const text = readFileSync(await download.path(), 'utf8');
    expect(text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: tick 1\n/);
    expect(text).toContain('checkpoint-e2e 5');
  });

  it('lists the admin calls the panel made in the Audit log, named by the host profile', async () => {
    await view('Audit log').click();
    const table = session.page.getByRole('table', { name: 'Audit entries' });
    const created = table.locator('tbody tr', { hasText: 'POST /api/v1/slots' }).first();
    await created.waitFor();
    expect(await created.innerText()).toMatch(/This computer \(panel\)[\s\S]*POST \/api\/v1\/slots[\s\S]*success/);
    await shot('audit-admin-calls');
  });
});
