import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DtachConnection,
  PACKET_SIZE,
  RedrawMethod,
  encodeAttach,
  encodeDetach,
  encodeInput,
  encodeRedraw,
  encodeResize,
} from '../../../../remote-agent/src/modules/terminal/dtach.js';

const DTACH = '/usr/bin/dtach';

/** The bytes the dtach master would hand to the program: each packet's first `len` payload bytes. */
function decodeInput(packets: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < packets.length; offset += PACKET_SIZE) {
    expect(packets[offset]).toBe(0);
    const length = packets[offset + 1]!;
    expect(length).toBeGreaterThan(0);
    expect(length).toBeLessThanOrEqual(8);
    parts.push(packets.subarray(offset + 2, offset + 2 + length));
  }
  return Buffer.concat(parts);
}

describe('encodeInput', () => {
  it('splits input into 10-byte packets: type 0, length, then up to 8 bytes of input', () => {
    const packets = encodeInput(Buffer.from('hello world!'));
    expect(packets).toHaveLength(20);
    expect([...packets.subarray(0, 10)]).toEqual([0, 8, ...Buffer.from('hello wo')]);
    expect([...packets.subarray(10, 20)]).toEqual([0, 4, ...Buffer.from('rld!'), 0, 0, 0, 0]);
  });

  it('uses whole packets for input of exactly 8 bytes and none for empty input', () => {
    expect([...encodeInput(Buffer.from('12345678'))]).toEqual([0, 8, ...Buffer.from('12345678')]);
    expect(encodeInput(Buffer.alloc(0))).toHaveLength(0);
  });

  it('keeps every byte, UTF-8 characters cut across packets and control bytes included', () => {
    const text = Buffer.from('héllo ✓ wörld 🙂\x03\x1b[A\r\n\x00\xff');
    expect(decodeInput(encodeInput(text))).toEqual(text);
    const random = Buffer.from(Array.from({ length: 4099 }, (_, i) => (i * 7919) % 256));
    const packets = encodeInput(random);
    expect(packets).toHaveLength(Math.ceil(4099 / 8) * PACKET_SIZE);
    expect(decodeInput(packets)).toEqual(random);
  });
});

describe('control packets', () => {
  it('encodes a resize as struct winsize: rows then columns, little-endian 16-bit', () => {
    expect([...encodeResize(100, 30)]).toEqual([3, 0, 30, 0, 100, 0, 0, 0, 0, 0]);
    const wide = encodeResize(300, 260);
    expect(wide).toHaveLength(PACKET_SIZE);
    expect(wide.readUInt16LE(2)).toBe(260);
    expect(wide.readUInt16LE(4)).toBe(300);
  });

  it('carries the redraw method in the length byte, with the size', () => {
    expect([...encodeRedraw(RedrawMethod.WINCH, 80, 24)]).toEqual([4, 3, 24, 0, 80, 0, 0, 0, 0, 0]);
    expect(encodeRedraw(RedrawMethod.NONE, 80, 24)[1]).toBe(1);
    expect(encodeRedraw(RedrawMethod.CTRL_L, 80, 24)[1]).toBe(2);
  });

  it('encodes attach and detach as bare packets', () => {
    expect([...encodeAttach()]).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect([...encodeDetach()]).toEqual([2, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('DtachConnection against the real dtach', () => {
  let dir: string | null = null;
  let master: ChildProcess | null = null;
  let connection: DtachConnection | null = null;

  afterEach(async () => {
    connection?.close();
    connection = null;
    if (master && master.exitCode === null && master.signalCode === null) {
      const exited = new Promise((resolve) => master!.once('exit', resolve));
      master.kill('SIGTERM');
      await exited;
    }
    master = null;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  /** A dtach session in the foreground running `script` once a client has set the terminal's size. */
  async function startSession(script: string): Promise<string> {
    dir = mkdtempSync(join(tmpdir(), 'sd-dtach-'));
    const socket = join(dir, 'session.sock');
    const waitForSize = 'while [ "$(stty size)" = "0 0" ]; do sleep 0.01; done; ';
    master = spawn(DTACH, ['-N', socket, '-r', 'none', 'sh', '-c', waitForSize + script], { stdio: 'ignore' });
    for (let i = 0; i < 200 && !existsSync(socket); i++) await sleep(10);
    expect(existsSync(socket)).toBe(true);
    return socket;
  }

  /** Collects the session's output; `until` resolves once the text seen so far satisfies `done`. */
  function collect(conn: DtachConnection): {
    text: () => string;
    until: (done: (text: string) => boolean) => Promise<void>;
  } {
    const chunks: Buffer[] = [];
    conn.on('data', (chunk) => chunks.push(chunk));
    const text = (): string => Buffer.concat(chunks).toString('utf8');
    return {
      text,
      until: async (done) => {
        for (let i = 0; i < 500; i++) {
          if (done(text())) return;
          await sleep(10);
        }
        throw new Error(`timed out; output so far: ${JSON.stringify(text())}`);
      },
    };
  }

  it('sets the size the program sees (rows and columns in the right order) and carries input and output', async () => {
    const socket = await startSession('stty size; stty -echo; echo ready; cat');
    connection = await DtachConnection.connect(socket);
    const output = collect(connection);
    connection.resize(100, 30);
    await output.until((text) => text.includes('30 100\r\nready\r\n'));

    connection.write(Buffer.from('héllo ✓ 🙂\n'));
    await output.until((text) => text.includes('héllo ✓ 🙂\r\n'));
  });

  it('delivers a long paste whole and in order', async () => {
    const socket = await startSession('stty -echo; echo ready; cat');
    connection = await DtachConnection.connect(socket);
    const output = collect(connection);
    connection.resize(120, 40);
    await output.until((text) => text.includes('ready\r\n'));
    const lines = Array.from({ length: 400 }, (_, i) => `line ${String(i).padStart(3, '0')} ${'x'.repeat(40)} ✓`);
    connection.write(Buffer.from(`${lines.join('\n')}\n`));
    await output.until((text) => text.includes(lines[lines.length - 1]!));
    expect(output.text().replaceAll('\r\n', '\n')).toBe(`ready\n${lines.join('\n')}\n`);
  });

  it('reports close once when the session ends', async () => {
    const socket = await startSession('exit 0');
    connection = await DtachConnection.connect(socket);
    const closed = new Promise<void>((resolve) => connection!.once('close', resolve));
    connection.resize(80, 24);
    await closed;
    expect(connection.isClosed).toBe(true);
    // Writing to an ended session is ignored, not thrown.
    connection.write(Buffer.from('ignored'));
  });

  it('rejects when nothing listens on the socket path', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sd-dtach-'));
    await expect(DtachConnection.connect(join(dir, 'absent.sock'))).rejects.toThrow(/ENOENT/);
  });
});
