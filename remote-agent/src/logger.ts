import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

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
  return url.replace(/([?&](?:ticket|token)=)[^&#]*/gi, '$1[redacted]').replace(/(\/share\/)[^/?#]+/gi, '$1[redacted]');
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
