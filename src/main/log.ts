/** The main process's log: electron-log in the Electron app, the console (as JSON lines) in browser mode. */
export interface Logger {
  info(message: string, details?: unknown): void;
  warn(message: string, details?: unknown): void;
  error(message: string, details?: unknown): void;
}

const SECRET_KEYS = /token|ticket|secret|passphrase|password|privatekey|private_key|authorization/i;

/** Replaces the values of fields that look like secrets, however deep; errors keep their message and stack. */
export function redact(value: unknown, depth = 0): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, SECRET_KEYS.test(key) ? '[redacted]' : redact(item, depth + 1)]),
  );
}

export function consoleLogger(write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Logger {
  const log = (level: string) => (message: string, details?: unknown) =>
    write(
      JSON.stringify({
        time: new Date().toISOString(),
        level,
        message,
        ...(details === undefined ? {} : { details: redact(details) }),
      }),
    );
  return { info: log('info'), warn: log('warn'), error: log('error') };
}
