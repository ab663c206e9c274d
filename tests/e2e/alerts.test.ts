/**
 * The bell (Chromium, browser mode, the local agent): a slot whose program fails again and again becomes an unread
 * alert in the top bar, which opens the Alerts view with it firing; marking it read empties the bell.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARTIFACTS } from './helpers/browser.js';
import { panelInChromium } from './helpers/panel.js';

const session = panelInChromium({
  SLOTDECK_AGENT_ALERTS_INTERVAL_MS: '300',
  SLOTDECK_AGENT_CRASH_MAX_RESTARTS: '1',
  SLOTDECK_ALERTS_POLL_MS: '500',
});

/** The local agent's admin API (its token and address are in its data dir). */
async function localAgent(method: string, path: string, body?: unknown): Promise<unknown> {
  const dir = join(session.panel.dataDir, 'agents', 'local');
  const token = readFileSync(join(dir, 'secrets', 'admin-token'), 'utf8').trim();
  const { adminUrl } = JSON.parse(readFileSync(join(dir, 'agent-state.json'), 'utf8')) as { adminUrl: string };
  const response = await fetch(`${adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return response.json();
}

describe('alerts (Chromium, browser mode)', () => {
  it('a failing slot makes the bell show an unread alert, which opens the Alerts view', async () => {
    await localAgent('POST', '/api/v1/alerts/read', { all: true });
    await localAgent('POST', '/api/v1/slots', {
      name: 'always-fails',
      command: { preset: 'custom', command: 'sh', args: ['-c', 'echo broken; exit 3'] },
    });
    const count = session.page.getByTestId('alert-bell-count');
    await count.waitFor({ timeout: 60_000 });
    expect(Number(await count.textContent())).toBeGreaterThanOrEqual(1);
    // The first unread row may be a recovery event (PM2 restarting the slot); the failed-slot alert follows it.
    await session.page.locator('[data-testid="alert-bell"].firing').waitFor({ timeout: 60_000 });
    await session.page.screenshot({ path: join(ARTIFACTS, 'alerts-bell.png') });

    await session.page.getByTestId('alert-bell').click();
    const view = session.page.getByRole('main', { name: 'Alerts' });
    const row = view.getByTestId('alert-row').filter({ hasText: 'Slot always-fails failed' });
    await row.waitFor();
    expect(await row.locator('.chip').first().textContent()).toBe('firing');
    await session.page.screenshot({ path: join(ARTIFACTS, 'alerts-view.png'), fullPage: true });

    await view.getByRole('button', { name: 'Mark all read' }).click();
    await count.waitFor({ state: 'detached' });
  }, 120_000);
});
