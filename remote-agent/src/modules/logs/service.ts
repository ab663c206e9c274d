import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { AgentErrorCode, type LogPage, type LogSource } from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { agentLogPath } from '../../logger.js';
import type { LogStream } from './lines.js';
import { fsAccess, logChain, LogReader, type FileAccess, type PageRequest, type ReaderOptions } from './reader.js';

export interface LogServiceDeps {
  dataDir: string;
  /** Folder of the slots' PM2 logs. */
  logDir: string;
  /** The slots in the registry (their logs are sources while they exist). */
  slots: () => Array<{ id: string; name: string }>;
  reader?: ReaderOptions;
}

interface ResolvedSource {
  base: string;
  stream: LogStream;
}

/** The log viewer's sources and their pages: the agent's own log and each slot's PM2 stdout and stderr. */
export class LogService {
  private readonly access: FileAccess;

  constructor(private readonly deps: LogServiceDeps) {
    this.access = deps.reader?.access ?? fsAccess;
  }

  sources(): LogSource[] {
    const sized = (base: string): { sizeBytes: number; files: number } => {
      const chain = logChain(base, this.access).filter((file, i, all) => i < all.length - 1 || file.size > 0);
      return { sizeBytes: chain.reduce((sum, file) => sum + file.size, 0), files: chain.length };
    };
    const list: LogSource[] = [
      {
        id: 'agent',
        kind: 'agent',
        label: 'agent',
        slotId: null,
        stream: 'json',
        ...sized(agentLogPath(this.deps.dataDir)),
      },
    ];
    for (const slot of this.deps.slots()) {
      for (const stream of ['out', 'err'] as const) {
        list.push({
          id: `slot-${slot.id}.${stream}`,
          kind: 'slot',
          label: `${slot.name} (${stream === 'out' ? 'output' : 'errors'})`,
          slotId: slot.id,
          stream,
          ...sized(join(this.deps.logDir, `slot-${slot.id}.${stream}.log`)),
        });
      }
    }
    return list;
  }

  page(source: string, query: PageRequest): LogPage {
    const resolved = this.resolve(source);
    return new LogReader(resolved.base, resolved.stream, this.deps.reader ?? {}).page(source, query);
  }

  /** The whole log, oldest file first, streamed a chunk at a time. */
  download(source: string): { stream: Readable; filename: string } {
    const { base } = this.resolve(source);
    const files = logChain(base, this.access)
      .filter((file) => file.size > 0)
      .map((file) => file.path);
    const out = new PassThrough();
    void (async () => {
      for (const file of files) {
        await new Promise<void>((resolve) => {
          const input = createReadStream(file);
          // A file rotated away meanwhile is left out rather than failing the download.
          input.once('error', () => resolve());
          input.once('end', () => resolve());
          input.pipe(out, { end: false });
        });
      }
      out.end();
    })();
    return { stream: out, filename: `${source}.log` };
  }

  private resolve(source: string): ResolvedSource {
    if (source === 'agent') return { base: agentLogPath(this.deps.dataDir), stream: 'json' };
    const match = /^slot-([a-z0-9]{10})\.(out|err)$/.exec(source);
    if (match && this.deps.slots().some((slot) => slot.id === match[1])) {
      return { base: join(this.deps.logDir, `slot-${match[1]}.${match[2]}.log`), stream: match[2] as 'out' | 'err' };
    }
    throw new AppError(
      AgentErrorCode.LOG_NOT_FOUND,
      404,
      `No log "${source}" on this host (its slot may have been deleted). GET /api/v1/logs lists the logs there are.`,
    );
  }
}
