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
