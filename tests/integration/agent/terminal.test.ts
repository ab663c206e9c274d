import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import xtermHeadless from '@xterm/headless';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorBody, Slot } from '../../../remote-agent/src/contract/index.js';
import { AgentProcess } from '../helpers/agent.js';
import { TerminalTestClient, upgradeStatus } from '../helpers/terminal-client.js';
import { until } from '../helpers/until.js';

const { Terminal } = xtermHeadless;
type HeadlessTerminal = InstanceType<typeof Terminal>;

let agent: AgentProcess;

/** What a terminal shows: every line of the active buffer (scrollback included), the cursor and which buffer. */
async function render(
  bytes: string,
  cols: number,
  rows: number,
): Promise<{ lines: string[]; cursor: [number, number]; alternate: boolean }> {
  const term: HeadlessTerminal = new Terminal({ cols, rows, scrollback: 10_000, allowProposedApi: true });
  await new Promise<void>((resolve) => term.write(bytes, resolve));
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)!.translateToString(true));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const result = {
    lines,
    cursor: [buffer.cursorX, buffer.cursorY] as [number, number],
    alternate: buffer.type === 'alternate',
  };
  term.dispose();
  return result;
}

beforeAll(async () => {
  agent = await AgentProcess.start({
    env: {
      SLOTDECK_AGENT_JOURNAL_COMPACT_BYTES: '65536',
      // Short, so that a socket without a ticket is seen closed at once (the default is 2 s).
      SLOTDECK_AGENT_TERMINAL_OPENING_TIMEOUT_MS: '300',
    },
  });
});

afterAll(async () => {
  await agent?.destroy();
});

describe('who may open a terminal', () => {
  const PANEL = 'http://127.0.0.1:43210';
  const ws = (path: string): string => `${agent.url.replace('http', 'ws')}${path}`;
  let slot: Slot;

  beforeAll(async () => {
    slot = await agent.createSlot({ name: 'origins' });
  });

  it('opens the terminal from the page origin the ticket was minted for', async () => {
    const { path } = await agent.ticket(slot.id, 'writable', PANEL);
    const client = await TerminalTestClient.open(ws(path), undefined, { origin: PANEL });
    await client.waitForPrompt();
    client.close();
  });

  it('refuses a browser-bound ticket from another origin, or without an Origin header, with a code', async () => {
    for (const origin of ['http://evil.example', 'http://127.0.0.1:43211', 'null', undefined]) {
      const { path } = await agent.ticket(slot.id, 'writable', PANEL);
      const refused = await upgradeStatus(ws(path), origin);
      expect(refused.status, String(origin)).toBe(403);
      expect((JSON.parse(refused.body) as ErrorBody).error.code).toBe('TERMINAL_ORIGIN_REFUSED');
      // The refused attempt used the ticket up: the right page cannot take it over afterwards.
      expect((await upgradeStatus(ws(path), PANEL)).status).toBe(401);
    }
  });

  it('refuses Origin: null (a sandboxed iframe or data: page) for every ticket, at the upgrade and in the opening', async () => {
    for (const bound of [PANEL, 'app://slotdeck', 'file://', undefined]) {
      const { path } = await agent.ticket(slot.id, 'writable', bound);
      const refused = await upgradeStatus(ws(path), 'null');
      expect(refused.status, String(bound)).toBe(403);
      expect((JSON.parse(refused.body) as ErrorBody).error.code).toBe('TERMINAL_ORIGIN_REFUSED');

      const { ticket } = await agent.ticket(slot.id, 'writable', bound);
      const framed = await TerminalTestClient.open(
        ws(`/api/v1/slots/${slot.id}/terminal`),
        { AuthToken: ticket, columns: 80, rows: 24 },
        { origin: 'null' },
      );
      expect(await framed.waitClosed(), String(bound)).toEqual({
        code: 4401,
        reason: 'this ticket was issued for another page origin',
      });
      expect(framed.output).toBe('');
    }
  });

  it('opens an app://slotdeck ticket (the Electron panel) from that origin', async () => {
    const { path } = await agent.ticket(slot.id, 'writable', 'app://slotdeck');
    const client = await TerminalTestClient.open(ws(path), undefined, { origin: 'app://slotdeck' });
    await client.waitForPrompt();
    client.close();
  });

  it('refuses a stolen ticket sent in the opening message from another origin, as ttyd clients send it', async () => {
    const { ticket } = await agent.ticket(slot.id, 'writable', PANEL);
    const thief = await TerminalTestClient.open(
      ws(`/api/v1/slots/${slot.id}/terminal`),
      { AuthToken: ticket, columns: 80, rows: 24 },
      { origin: 'http://evil.example' },
    );
    expect(await thief.waitClosed()).toEqual({ code: 4401, reason: 'this ticket was issued for another page origin' });
    expect(thief.output).toBe('');
  });

  it('refuses an origin-less ticket (made for the CLI) from a web page', async () => {
    const { path } = await agent.ticket(slot.id, 'writable');
    expect((await upgradeStatus(ws(path), PANEL)).status).toBe(403);
  });

  it('rejects a ticket bound to something that is not a page origin', async () => {
    for (const origin of ['http://127.0.0.1:43210/', 'javascript:alert(1)', 'null', 'http://a/b', '*']) {
      const response = await agent.request<ErrorBody>('POST', `/api/v1/slots/${slot.id}/tickets`, { origin });
      expect(response.status, origin).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
    }
  });

  it('closes a socket that brings no ticket: the server ends it, not the client', async () => {
    const idle = await TerminalTestClient.open(ws(`/api/v1/slots/${slot.id}/terminal`), undefined, {
      sendOpening: false,
    });
    expect(await idle.waitClosed()).toEqual({
      code: 4400,
      reason: 'no opening message with a terminal ticket in time',
    });
  });
});

describe('flow control', () => {
  it('keeps a fast client at full speed while another is paused or stalled, and resyncs them afterwards', async () => {
    const slot = await agent.createSlot({ name: 'flood' });
    const fast = await agent.attach(slot.id);
    const paused = await agent.attach(slot.id, 'read-only');
    const stalled = await agent.attach(slot.id, 'read-only');
    await fast.waitForPrompt();
    await paused.waitForPrompt();
    await stalled.waitForPrompt();

    paused.socket.send(Buffer.from('2')); // ttyd's PAUSE
    // The agent handles a socket's frames in order, so its pong to a later ping means the PAUSE has taken effect.
    await new Promise((resolve) => {
      paused.socket.once('pong', resolve);
      paused.socket.ping();
    });
    const rawSocket = (stalled.socket as unknown as { _socket: Socket })._socket;
    rawSocket.pause(); // stops reading: TCP backpressure, as a client on a slow link

    const pausedBefore = paused.output.length;
    // About 27 MB of output: more than a client may have queued, and more than loopback TCP buffers absorb for the
    // stalled one.
    fast.type('seq 1 3500000; echo flood-$((1+1))-done\r');
    await fast.waitFor('flood-2-done', 60_000);
    expect(fast.text).toContain('\n3499999\r\n3500000\r\n');
    // The paused client got nothing while paused.
    expect(paused.output.length).toBe(pausedBefore);

    paused.socket.send(Buffer.from('3')); // RESUME
    rawSocket.resume();
    await paused.waitFor('flood-2-done', 20_000);
    await stalled.waitFor('flood-2-done', 20_000);
    for (const lagging of [paused, stalled]) {
      // They got a fresh copy of the screen (after a reset) instead of the backlog.
      expect(lagging.output).toContain('\x1bc');
      expect(lagging.text).toContain('3500000');
    }
    // The paused one nothing else; the stalled one also what the kernel had buffered before it stopped reading.
    expect(paused.output.length).toBeLessThan(3 * 1024 * 1024);
    expect(stalled.output.length).toBeLessThan(fast.output.length / 2);
    expect(fast.output.length).toBeGreaterThan(27_000_000);
    for (const client of [fast, paused, stalled]) client.close();
  });
});

describe('several clients', () => {
  it('lets only the client at the keyboard answer a query, so the program reads one answer', async () => {
    const slot = await agent.createSlot({ name: 'queries' });
    const a = await agent.attach(slot.id);
    const b = await agent.attach(slot.id);
    await a.waitForPrompt();
    await b.waitForPrompt();
    // A program asks for the cursor position and reads every answer that arrives within a second.
    a.type(
      `printf '\\033[6n'; IFS= read -rs -t 1 -d R first; IFS= read -rs -t 1 -d R second; echo "answers:[\${first#*[}][\${second#*[}]"\r`,
    );
    await a.waitFor('\x1b[6n');
    await b.waitFor('\x1b[6n');
    // Both terminals answer, as xterm.js does; B's answer arrives first.
    b.type('\x1b[7;12R');
    a.type('\x1b[7;10R');
    const answers = /answers:\[[\d;]*\]\[[\d;]*\]/;
    const out = await a.waitFor(answers);
    expect(answers.exec(out)?.[0]).toBe('answers:[7;10][]');
    a.close();
    b.close();
  });

  it('sizes the terminal from writable clients only', async () => {
    const slot = await agent.createSlot({ name: 'sizes' });
    const writer = await agent.attach(slot.id, 'writable', { columns: 90, rows: 20 });
    await writer.waitForPrompt();
    const viewer = await agent.attach(slot.id, 'read-only', { columns: 40, rows: 10 });
    viewer.resize(50, 12);
    writer.type('stty size\r');
    await writer.waitFor('20 90');
    writer.resize(132, 40);
    await until(
      'the agent to apply the resize',
      async () => (await agent.slot(slot.id)).size,
      (size) => size.cols === 132 && size.rows === 40,
    );
    writer.type('stty size\r');
    await writer.waitFor('40 132');
    expect((await agent.request<Slot>('GET', `/api/v1/slots/${slot.id}`)).body.size).toEqual({ cols: 132, rows: 40 });
    writer.close();
    viewer.close();
  });

  it('serves twenty clients of one slot the same output', async () => {
    const slot = await agent.createSlot({ name: 'crowd' });
    const clients = await Promise.all(
      Array.from({ length: 20 }, (_, i) => agent.attach(slot.id, i === 0 ? 'writable' : 'read-only')),
    );
    await clients[0]!.waitForPrompt();
    clients[0]!.type('echo crowd-$((20*20))\r');
    await Promise.all(clients.map((client) => client.waitFor('crowd-400')));
    expect((await agent.request<Slot>('GET', `/api/v1/slots/${slot.id}`)).body.viewers).toEqual({
      writable: 1,
      readOnly: 19,
    });
    for (const client of clients) client.close();
  });
});

describe('replay', () => {
  it('gives a late client exactly the screen a client that watched from the start sees, alternate screen included', async () => {
    const slot = await agent.createSlot({ name: 'fidelity' });
    const watcher = await agent.attach(slot.id, 'writable', { columns: 80, rows: 24 });
    await watcher.waitForPrompt();
    // Colours, a long wrapped line, then a full-screen program drawing in the alternate screen.
    watcher.type(
      `for i in $(seq 1 40); do printf '\\033[3%dmline %02d \\033[1mbold\\033[0m\\n' $((i % 7 + 1)) $i; done; printf '%0150d\\n' 7; ` +
        `printf '\\033[?1049h\\033[2J\\033[5;10H\\033[44m full screen \\033[0m\\033[10;3Hstatus: %s' ok; sleep 600\r`,
    );
    // Only the program's output has "status: ok" (the echo of the typed line has "status: %s' ok"): on a busy
    // machine the echo alone arrives first, and a late client attached then would see no full-screen program yet.
    await watcher.waitFor('status: ok');

    const late = await agent.attach(slot.id, 'read-only', { columns: 80, rows: 24 });
    // The replay may arrive in several frames: wait until the late client's screen has settled on the watcher's.
    const { seen, replayed } = await until(
      "the late client to show the watcher's screen",
      async () => ({ seen: await render(watcher.output, 80, 24), replayed: await render(late.output, 80, 24) }),
      (screens) => isDeepStrictEqual(screens.seen, screens.replayed),
      { timeoutMs: 5000 },
    );
    expect(replayed.alternate).toBe(true);
    expect(replayed).toEqual(seen);

    // Leaving the full-screen program shows the same history in both.
    watcher.type('\x03');
    await watcher.waitForPrompt();
    watcher.type('printf "\\033[?1049l"; echo back-home\r');
    await watcher.waitFor('back-home');
    const again = await agent.attach(slot.id, 'read-only', { columns: 80, rows: 24 });
    const { seen: seenAfter, replayed: replayedAfter } = await until(
      "the third client to show the watcher's lines",
      async () => ({ seen: await render(watcher.output, 80, 24), replayed: await render(again.output, 80, 24) }),
      (screens) => isDeepStrictEqual(screens.seen.lines, screens.replayed.lines),
      { timeoutMs: 5000 },
    );
    expect(replayedAfter.lines).toEqual(seenAfter.lines);
    expect(replayedAfter.lines.some((line) => line.startsWith('line 01 bold'))).toBe(true);
    for (const client of [watcher, late, again]) client.close();
  });

  it('keeps the screen across journal compaction and an agent restart', async () => {
    const slot = await agent.createSlot({ name: 'compacted' });
    const client = await agent.attach(slot.id);
    await client.waitForPrompt();
    // More than the 64 KiB compaction threshold set for this agent.
    client.type('for i in $(seq 1 6000); do echo "compact-line-$i"; done; echo compact-end\r');
    await client.waitFor('compact-end');
    client.close();
    const snapshot = join(agent.dataDir, 'slots', slot.id, 'screen', 'screen.snapshot.json');
    await until('the journal to be compacted into a snapshot', () => existsSync(snapshot), Boolean, {
      timeoutMs: 10_000,
    });

    await agent.kill();
    await agent.launch();
    const viewer = await agent.attach(slot.id, 'read-only');
    await viewer.waitFor('compact-end');
    expect(viewer.text).toContain('compact-line-5999');
    viewer.close();
  });
});
