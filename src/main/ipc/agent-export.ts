import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { UsageExportResult } from '../../shared/ipc/contract';
import type { IpcErrorCode } from '../../shared/ipc/errors';
import type { AgentClient } from '../services/agent/agent-client';
import { IpcError } from './errors';

/** An export larger than this is not sent over browser mode's socket: the admin narrows the filter instead. */
export const BROWSER_EXPORT_MAX_BYTES = 32 * 1024 * 1024;
const EXPORT_TIMEOUT_MS = 10 * 60_000;

/** What one agent export (usage, audit) differs in; the streaming, saving and size cap are the same for all. */
export interface AgentExport {
  path: string;
  query: Parameters<AgentClient['download']>[1];
  fileName: string;
  mimeType: string;
  /** Thrown when the picked file cannot be written. */
  writeFailedCode: IpcErrorCode;
  /** Thrown when browser mode's content would pass BROWSER_EXPORT_MAX_BYTES. */
  tooLargeCode: IpcErrorCode;
  /** How to make the export smaller, for the too-large message (e.g. "Pick a shorter range or one user"). */
  narrowHint: string;
}

/**
 * Fetches an export from the agent. With a save dialog (the Electron app) it streams into the file the admin picked;
 * without one (browser mode) it returns the content, up to BROWSER_EXPORT_MAX_BYTES, for the page to download.
 */
export async function exportFromAgent(
  client: AgentClient,
  exported: AgentExport,
  pickSaveFile: ((suggestedName: string) => Promise<string | null>) | undefined,
  signal: AbortSignal,
): Promise<UsageExportResult> {
  const { fileName, mimeType } = exported;
  const savedTo = pickSaveFile ? await pickSaveFile(fileName) : null;
  if (pickSaveFile && !savedTo) return { fileName, mimeType, bytes: 0, savedTo: null, content: null };
  const response = await client.download(exported.path, exported.query, EXPORT_TIMEOUT_MS, signal);
  const body = response.body
    ? Readable.fromWeb(response.body as WebReadableStream<Uint8Array>, { signal })
    : Readable.from([]);
  if (savedTo) {
    try {
      await pipeline(body, createWriteStream(savedTo, { mode: 0o600 }));
    } catch (error) {
      throw new IpcError(
        exported.writeFailedCode,
        `Could not write ${savedTo} (${(error as Error).message}). Pick another folder and export again.`,
      );
    }
    return { fileName, mimeType, bytes: (await stat(savedTo)).size, savedTo, content: null };
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > BROWSER_EXPORT_MAX_BYTES) {
      body.destroy();
      throw new IpcError(
        exported.tooLargeCode,
        `This export is larger than ${BROWSER_EXPORT_MAX_BYTES / 1024 / 1024} MB, more than browser mode sends at once. ${exported.narrowHint}, or export from the Slotdeck app.`,
      );
    }
    chunks.push(chunk);
  }
  return { fileName, mimeType, bytes, savedTo: null, content: Buffer.concat(chunks).toString('utf8') };
}
