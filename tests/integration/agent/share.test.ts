import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedShare, ShareList, ShareTicket, Slot } from '../../../remote-agent/src/contract/index.js';
import { TerminalCloseCode } from '../../../remote-agent/src/contract/index.js';
import { AGENT_DIR, AgentProcess } from '../helpers/agent.js';
import { TerminalTestClient, upgradeStatus } from '../helpers/terminal-client.js';

let agent: AgentProcess;
let slot: Slot;

beforeAll(async () => {
  agent = await AgentProcess.start();
  slot = await agent.createSlot({ name: 'shared' });
  // The slot's shell is up once an admin client sees its prompt.
  const admin = await agent.attach(slot.id);
  await admin.waitForPrompt();
  admin.close();
});

afterAll(async () => {
  await agent?.destroy();
});

async function share(
  body: Record<string, unknown>,
  on: { agent: AgentProcess; slot: Slot } = { agent, slot },
): Promise<CreatedShare & { token: string }> {
  const response = await on.agent.request<CreatedShare>('POST', `/api/v1/slots/${on.slot.id}/shares`, {
    expiresInMinutes: 10,
    signInRequired: false,
    ...body,
  });
  expect(response.status).toBe(201);
  const token = response.body.link.split('/share/')[1]!;
  return { ...response.body, token };
}

/** What the share page does: exchange the token (from its URL) for a ticket, then open the public terminal. */
async function openShare(token: string, on: AgentProcess = agent): Promise<TerminalTestClient> {
  const origin = on.gatewayUrl;
  const response = await fetch(`${on.gatewayUrl}/api/public/share/${token}/ticket`, {
    method: 'POST',
    headers: { origin },
  });
  expect(response.status).toBe(201);
  const ticket = (await response.json()) as ShareTicket;
  return TerminalTestClient.open(
    `${on.gatewayUrl.replace('http', 'ws')}${ticket.url}`,
    { AuthToken: '', columns: 100, rows: 30 },
    { origin },
  );
}

describe('share links against a real agent', () => {
  it('serves the share page on the public listener with its link, no referrer and no framing by default', async () => {
    const created = await share({ mode: 'read' });
    expect(created.link).toBe(`${agent.gatewayUrl}/share/${created.token}`);
    const page = await fetch(created.link);
    const built = existsSync(join(AGENT_DIR, 'portal-dist', 'share.html'));
    expect(page.status).toBe(built ? 200 : 503);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(await page.text()).not.toContain(created.token);
  });

  it('a writable share types into the slot and sees the echo; a read-only one cannot type or resize', async () => {
    const writable = await share({ mode: 'write' });
    const readOnly = await share({ mode: 'read' });
    const writer = await openShare(writable.token);
    const watcher = await openShare(readOnly.token);
    await writer.waitForPrompt();
    await watcher.waitForPrompt();

    watcher.type('echo watcher-$((5*5))\r');
    watcher.resize(40, 10);
    writer.type('echo writer-$((6*7))\r');
    await writer.waitFor('writer-42');
    await watcher.waitFor('writer-42');
    expect(writer.text).not.toContain('watcher-25');
    expect(watcher.text).not.toContain('watcher-25');
    expect((await agent.slot(slot.id)).size).toEqual({ cols: 100, rows: 30 });

    const listed = await agent.request<ShareList>('GET', `/api/v1/slots/${slot.id}/shares`);
    expect(JSON.stringify(listed.body)).not.toContain(writable.token);
    const byId = new Map(listed.body.shares.map((s) => [s.id, s]));
    expect(byId.get(writable.share.id)).toMatchObject({ viewersNow: 1, opens: 1, state: 'active' });

    // Revoke: the viewer is disconnected at once, and the link opens no more.
    const revoked = await agent.request('DELETE', `/api/v1/shares/${writable.share.id}`);
    expect(revoked.status).toBe(200);
    expect(await writer.waitClosed()).toEqual({
      code: TerminalCloseCode.ACCESS_ENDED,
      reason: 'this share link was revoked',
    });
    const again = await fetch(`${agent.gatewayUrl}/api/public/share/${writable.token}/ticket`, {
      method: 'POST',
      headers: { origin: agent.gatewayUrl },
    });
    expect(again.status).toBe(410);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('SHARE_REVOKED');
    expect(watcher.closed).toBeNull();
    watcher.close();
  });

  it('refuses admin tickets on the public terminal and public tickets from another origin', async () => {
    const adminTicket = await agent.ticket(slot.id, 'writable', agent.gatewayUrl);
    const publicWs = `${agent.gatewayUrl.replace('http', 'ws')}/api/public/terminal/${slot.id}`;
    expect((await upgradeStatus(`${publicWs}?ticket=${adminTicket.ticket}`, agent.gatewayUrl)).status).toBe(401);
    const created = await share({ mode: 'write' });
    const response = await fetch(`${agent.gatewayUrl}/api/public/share/${created.token}/ticket`, {
      method: 'POST',
      headers: { origin: agent.gatewayUrl },
    });
    const { ticket } = (await response.json()) as ShareTicket;
    expect((await upgradeStatus(`${publicWs}?ticket=${ticket}`, 'https://evil.example')).status).toBe(403);
  });

  it('keeps share tokens out of the agent log', async () => {
    const created = await share({ mode: 'read' });
    await fetch(created.link);
    await fetch(`${agent.gatewayUrl}/api/public/share/${created.token}/ticket`, {
      method: 'POST',
      headers: { origin: agent.gatewayUrl },
    });
    await fetch(`${agent.url}/share/${created.token}`);
    expect(agent.logs.join('\n')).not.toContain(created.token);
  });
});

/** A real ttyd when one is installed; else (Debian 12 does not package it) the stand-in speaking its protocol. */
const realTtyd = spawnSync('sh', ['-c', 'command -v ttyd'], { encoding: 'utf8' }).stdout.trim() || null;
const ttydBackend = realTtyd
  ? `a real ttyd (${realTtyd})`
  : 'a stand-in for ttyd (tests/integration/fixtures/fake-ttyd.mjs: its protocol, not ttyd itself)';

describe(`share links of a slot on the ttyd backend, run by ${ttydBackend}`, () => {
  let bin: string;
  let onTtyd: AgentProcess;
  let ttydSlot: Slot;

  beforeAll(async () => {
    bin = mkdtempSync(join(tmpdir(), 'sd-ttyd-bin-'));
    if (!realTtyd) {
      const fake = resolve(import.meta.dirname, '../fixtures/fake-ttyd.mjs');
      writeFileSync(join(bin, 'ttyd'), `#!/bin/sh\nexec "${process.execPath}" "${fake}" "$@"\n`);
      chmodSync(join(bin, 'ttyd'), 0o755);
    }
    onTtyd = await AgentProcess.start({ env: { PATH: `${bin}:${process.env.PATH}` } });
    ttydSlot = await onTtyd.createSlot({ name: 'via-ttyd', terminal: 'ttyd' });
  });

  afterAll(async () => {
    await onTtyd?.destroy();
    rmSync(bin, { recursive: true, force: true });
  });

  it('keeps a read-only viewer read-only, counts viewers per share, and revoke closes them', async () => {
    const on = { agent: onTtyd, slot: ttydSlot };
    const writable = await share({ mode: 'write' }, on);
    const readOnly = await share({ mode: 'read' }, on);
    const writer = await openShare(writable.token, onTtyd);
    await writer.waitFor(/[#$] /);
    const watcher = await openShare(readOnly.token, onTtyd);
    watcher.type('echo watcher-$((5*5))\r');
    writer.type('echo writer-$((6*7))\r');
    await writer.waitFor('writer-42');
    await watcher.waitFor('writer-42');
    expect(writer.text).not.toContain('watcher-25');

    const listed = await onTtyd.request<ShareList>('GET', `/api/v1/slots/${ttydSlot.id}/shares`);
    expect(listed.body.shares.map((s) => [s.mode, s.viewersNow]).sort()).toEqual([
      ['read', 1],
      ['write', 1],
    ]);
    await onTtyd.request('DELETE', `/api/v1/shares/${readOnly.share.id}`);
    expect((await watcher.waitClosed()).code).toBe(TerminalCloseCode.ACCESS_ENDED);
    expect(writer.closed).toBeNull();
    writer.close();
  });
});
