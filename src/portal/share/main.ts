import '@xterm/xterm/css/xterm.css';
import './share.css';
import type { IClipboardProvider } from '@xterm/addon-clipboard';
import type { ShareTicket } from '../../../remote-agent/src/contract/share';
import { TerminalController } from '../../renderer/src/features/terminal/controller';
import { readPageData, webSocketUrl } from '../lib/page-data';
import { DARK_TERMINAL } from '../lib/terminal-theme';
import {
  endedMessage,
  FINAL_SHARE_ERRORS,
  parseShareData,
  shareTokenFromPath,
  statusText,
  type EndedReason,
} from './logic';

const root = document.getElementById('share')!;
const nameEl = root.querySelector<HTMLElement>('.share-name')!;
const badgeEl = root.querySelector<HTMLElement>('.share-badge')!;
const stateEl = root.querySelector<HTMLElement>('.share-state')!;
const terminalEl = root.querySelector<HTMLElement>('.share-terminal')!;

const data = parseShareData(readPageData());
const token = shareTokenFromPath(location.pathname);
let controller: TerminalController | null = null;
let stoppedTimer: ReturnType<typeof setInterval> | null = null;

function showEnded(reason: EndedReason): void {
  controller?.dispose();
  controller = null;
  if (stoppedTimer) clearInterval(stoppedTimer);
  const { title, detail } = endedMessage(reason);
  const panel = document.createElement('section');
  panel.className = 'share-ended';
  panel.dataset.testid = 'share-ended';
  panel.dataset.reason = reason;
  const heading = document.createElement('h1');
  heading.textContent = title;
  const text = document.createElement('p');
  text.textContent = detail;
  panel.append(heading, text);
  root.replaceChildren(panel);
  document.title = `${title} · Slotdeck`;
}

class TicketRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The first ticket request, made by share.html's inline script before this code loaded; used once. */
function takeFirstTicket(): Promise<Response> | undefined {
  const page = window as { slotdeckFirstTicket?: Promise<Response> };
  const first = page.slotdeckFirstTicket;
  page.slotdeckFirstTicket = undefined;
  return first?.catch(() => askTicket());
}

function askTicket(): Promise<Response> {
  return fetch(`/api/public/share/${encodeURIComponent(token!)}/ticket`, {
    method: 'POST',
    headers: { accept: 'application/json' },
  });
}

async function fetchTicket(): Promise<string> {
  const response = await (takeFirstTicket() ?? askTicket());
  const body = (await response.json().catch(() => null)) as
    (ShareTicket & { error?: undefined }) | { error?: { code?: string; message?: string } } | null;
  if (!response.ok || !body || body.error) {
    const code = body?.error?.code ?? 'HTTP_' + response.status;
    const reason = FINAL_SHARE_ERRORS[code];
    if (reason) {
      showEnded(reason);
      throw new TicketRefused(code, 'This share link cannot be opened.');
    }
    throw new TicketRefused(code, body?.error?.message ?? `The agent answered ${response.status}; retrying.`);
  }
  return webSocketUrl((body as ShareTicket).url, location);
}

/**
 * OSC 52 from a writable share's program reaches the viewer's clipboard: writes only, never reads. Where the browser
 * wants a user gesture (the frame is not focused), the status line offers a Copy button instead.
 */
function writeOnlyClipboard(): IClipboardProvider {
  return {
    readText: () => '',
    writeText: async (_selection, text) => {
      try {
        await navigator.clipboard.writeText(text);
        // Said every time, with the size: a program that slips text into the clipboard is noticed before a paste.
        flash(`the program copied ${text.length} character${text.length === 1 ? '' : 's'} to your clipboard`);
      } catch {
        offerCopy(text);
      }
    },
  };
}

function flash(message: string): void {
  const note = document.createElement('span');
  note.className = 'share-note';
  note.dataset.testid = 'share-clipboard-note';
  note.textContent = message;
  root.querySelector('.share-note')?.remove();
  root.querySelector('.share-status')!.append(note);
  setTimeout(() => note.remove(), 3000);
}

function offerCopy(text: string): void {
  root.querySelector('.share-note')?.remove();
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'share-note';
  button.dataset.testid = 'share-copy';
  button.textContent = 'The program copied text: click to copy it';
  button.addEventListener('click', () => {
    void navigator.clipboard.writeText(text).then(
      () => flash('copied to your clipboard'),
      () => flash('the browser refused the clipboard'),
    );
  });
  root.querySelector('.share-status')!.append(button);
}

function start(): void {
  if (!token || data.state !== 'active') {
    showEnded(data.state === 'active' ? 'not-found' : data.state);
    return;
  }
  const writable = data.mode === 'write';
  nameEl.textContent = data.slotName ?? 'shared terminal';
  document.title = `${data.slotName ?? 'Shared terminal'} · Slotdeck`;
  badgeEl.hidden = writable;
  terminalEl.setAttribute(
    'aria-label',
    `Terminal of ${data.slotName ?? 'the shared slot'}${writable ? '' : ' (read-only)'}`,
  );
  controller = new TerminalController(terminalEl, {
    mode: writable ? 'writable' : 'read-only',
    openUrl: fetchTicket,
    theme: DARK_TERMINAL,
    ...(writable ? { clipboard: writeOnlyClipboard() } : {}),
    onStatus: (status) => {
      stateEl.textContent = statusText(status.state, status.attempt);
      stateEl.dataset.state = status.state;
      if (status.state === 'stopped') {
        // No slot list here to say when it runs again: ask now and then (the controller backs off by itself).
        stoppedTimer ??= setInterval(() => controller?.reattach(), 5000);
      } else if (stoppedTimer && status.state === 'open') {
        clearInterval(stoppedTimer);
        stoppedTimer = null;
      }
    },
  });
  if (writable) controller.focus();
}

start();
