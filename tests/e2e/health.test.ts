import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARTIFACTS } from './helpers/browser.js';
import { panelInChromium } from './helpers/panel.js';

const session = panelInChromium();

describe('health (Chromium, browser mode, the local agent)', () => {
  it('shows the host’s details and live charts from the agent, and keeps them current', async () => {
    await session.page
      .getByRole('navigation', { name: 'Views' })
      .getByRole('button', { name: 'Health', exact: true })
      .click();
    const health = session.page.getByRole('main', { name: 'Health' });
    await health.getByTestId('health-status').waitFor();

    const database = health.getByRole('region', { name: 'Database' });
    await database.getByText('Size').waitFor();
    await database
      .getByText(/\d+(\.\d)? (KB|MB)/)
      .first()
      .waitFor();
    await health
      .getByRole('region', { name: 'PM2' })
      .getByText(/^pid \d+$/)
      .waitFor();
    await health
      .getByRole('region', { name: 'Host' })
      .getByText(/% used, .* available/)
      .waitFor();
    // First run made the slot "main": the slots table lists it, running.
    const slots = health.getByRole('region', { name: 'Slots' });
    await slots.getByRole('row', { name: /main\s+running/ }).waitFor({ timeout: 20_000 });
    await health.getByRole('region', { name: 'Upstream' }).getByText('none yet').waitFor();
    await health.getByRole('region', { name: 'Backup and certificate' }).getByText('no TLS on the gateway').waitFor();

    // The agent samples every 10 s; the charts appear with the first sample, without a reload.
    const charts = health.getByRole('region', { name: 'Requests and errors per second' });
    await charts.locator('canvas').waitFor({ timeout: 30_000 });
    for (const title of ['Tokens per minute', 'Slots by state', 'CPU and memory'])
      await health.getByRole('region', { name: title }).locator('canvas').waitFor();
    const box = await charts.locator('canvas').boundingBox();
    expect(box!.width).toBeGreaterThan(200);
    expect(box!.height).toBeGreaterThan(100);

    const checked = await health.getByText(/^checked /).textContent();
    expect(checked).toMatch(/checked .* every 5 s/);
    await session.page.screenshot({ path: join(ARTIFACTS, 'health-view.png'), fullPage: true });
  });
});
