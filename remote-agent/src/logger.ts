import { join } from 'node:path';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import type { AgentConfig } from './config.js';
import { RotatingFile } from './modules/logs/rotation.js';

/** Paths of log fields that may hold secrets; their values never reach a log line. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'token',
  'ticket',
  'secret',
  '*.token',
  '*.ticket',
  '*.secret',
  '*.AuthToken',
  'env',
  '*.env',
];

/**
 * Strips the values of query parameters that carry credentials (`?ticket=…`) and the share token in share paths
 * (`/share/<token>`, `/api/public/share/<token>/ticket`).
 */
export function redactUrl(url: string): string {
  // The router decodes percent-escapes (`/%73hare/<token>` is the share page): redact the decoded path.
  let decoded: string;
  try {
    decoded = decodeURI(url);
  } catch {
    // A malformed escape: the router refuses such a URL, but its parts may still hold a token.
    decoded = url.replace(/%([0-9a-f]{2})/gi, (escape, hex: string) => {
      const char = String.fromCharCode(parseInt(hex, 16));
      return /[\w/]/.test(char) ? char : escape;
    });
  }
  return decoded
    .replace(/([?&](?:ticket|token)=)[^&#]*/gi, '$1[redacted]')
    .replace(/(\/share\/)[^/?#]+/gi, '$1[redacted]');
}

export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'slotdeck-agent' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: {
        req: (request: { method?: string; url?: string; id?: string }) => ({
          id: request.id,
          method: request.method,
          url: redactUrl(request.url ?? ''),
        }),
        err: pino.stdSerializers.err,
      },
    },
    destination,
  );
}

/** The agent's own log file, which the log viewer reads as the source `agent`. */
export const agentLogPath = (dataDir: string): string => join(dataDir, 'logs', 'agent.log');

/**
 * `serve`'s logger: every line goes to `<data dir>/logs/agent.log`, rotated by size and age (config `log.*`), and
 * also to stdout unless `log.stdout` is off (journald, PM2 and a terminal read it there).
 */
export function createAgentLogger(config: Pick<AgentConfig, 'dataDir' | 'logLevel' | 'log'>): {
  logger: Logger;
  file: RotatingFile | null;
} {
  if (config.logLevel === 'silent') return { logger: createLogger('silent'), file: null };
  const file = new RotatingFile(agentLogPath(config.dataDir), config.log);
  const level = config.logLevel;
  const streams: pino.StreamEntry[] = [{ level, stream: file }];
  if (config.log.stdout) streams.push({ level, stream: pino.destination({ fd: 1, sync: true }) });
  return { logger: createLogger(level, pino.multistream(streams)), file };
}
