/**
 * Browser mode: the panel's main process without Electron (where Electron's binary is not installed). The same
 * services and handlers; the renderer is served on 127.0.0.1 and talks to them over a WebSocket.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootstrap } from './bootstrap';
import { loadKeyring } from './keyring';
import { consoleLogger } from './log';
import { defaultDataDir } from './paths';
import { startWebHost, type WebHost } from './web-host';

const appRoot = join(import.meta.dirname, '../..');
const version = (JSON.parse(readFileSync(join(appRoot, 'package.json'), 'utf8')) as { version: string }).version;
const log = consoleLogger();
const dataDir = defaultDataDir();

// As in Electron's main process, a stray rejected promise is logged, not fatal: one failed background call (a
// poll through a tunnel that just dropped) must not take the admin's panel down with it.
process.on('unhandledRejection', (reason) => {
  log.error('unhandled rejection', {
    error: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason),
  });
});

// The web host's origin, known once it listens: terminal tickets are bound to it.
let pageOrigin: string | null = null;
const core = await bootstrap({
  mode: 'browser',
  version,
  dataDir,
  agentDir: join(appRoot, 'remote-agent'),
  nodePath: process.execPath,
  log,
  keyring: loadKeyring(),
  rendererOrigin: () => pageOrigin,
});
// Stopping works from here on, also while the page server and the local agent are still starting.
let web: WebHost | undefined;
let stopping = false;
/** What the terminal is told; once the terminal is gone (SIGHUP), the stop goes on without it (a write there fails). */
const say = (text: string): void => {
  try {
    process.stdout.write(text);
  } catch {
    // no terminal any more
  }
};
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);
const stop = (): void => {
  if (stopping) {
    // A second Ctrl-C: the admin does not want to wait for a graceful stop.
    say('Stopping now, without waiting.\n');
    process.exit(130);
  }
  stopping = true;
  say('\nStopping Slotdeck (its local agent too; your slots keep running)…\n');
  void (async () => {
    try {
      await web?.close();
      await core.dispose();
    } catch (error) {
      log.error('Slotdeck did not stop cleanly', error);
    }
    say('Slotdeck stopped.\n');
    process.exit(0);
  })();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
// npm (or whatever started Slotdeck) went away without a signal: its terminal closed. Stop as for Ctrl-C.
process.on('SIGHUP', stop);

const port = process.env.SLOTDECK_PORT ? Number(process.env.SLOTDECK_PORT) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(
    `SLOTDECK_PORT must be a port number (1-65535), not "${process.env.SLOTDECK_PORT}": fix or unset it.\n`,
  );
  process.exit(2);
}
// The browser keeps its sign-in per origin, port included: the same port as last time keeps the admin signed in.
const PORT_PREFERENCE = 'browser-mode-port';
try {
  web = await startWebHost({
    rendererDir: join(appRoot, 'out', 'renderer'),
    dispatcher: core.dispatcher,
    events: core.events,
    log,
    port,
    preferredPort: core.settings.preference<number>(PORT_PREFERENCE) ?? 0,
    sessions: core.settings,
    onNewLink: (url, reason) =>
      process.stdout.write(
        `\n${reason === 'expired' ? 'The link expired unused (links work for 10 minutes). Open this new one' : 'Signed out. To sign in again, open this link'} (it works once, within 10 minutes):\n\n  ${url}\n\n`,
      ),
  });
} catch (error) {
  process.stderr.write(
    `Slotdeck could not listen on 127.0.0.1:${port} (${(error as Error).message}). Stop the program using that port, or set SLOTDECK_PORT to another one (or unset it).\n`,
  );
  await core.dispose();
  process.exit(1);
}
core.settings.setPreference(PORT_PREFERENCE, web.port);
pageOrigin = web.origin;
if (web.notice) process.stdout.write(`\n${web.notice}\n`);
const { url } = web;
await core.ready;

// The line tests and scripts look for. The link works once, within 10 minutes (opened later, it makes Slotdeck print
// a new one); a browser that used it stays signed in (restarts on the same port too) until it signs out.
process.stdout.write(
  `\nSlotdeck is running in browser mode (data: ${dataDir}).\nOpen this link in your browser (it works once, within 10 minutes; the browser then stays signed in):\n\n  ${url}\n\nCtrl-C stops Slotdeck; your slots keep running.\n`,
);
process.stdout.write(`SLOTDECK_READY ${JSON.stringify({ url, origin: pageOrigin, pid: process.pid })}\n`);
