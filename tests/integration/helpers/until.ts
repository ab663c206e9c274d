import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` until `ok` holds for its value, and returns that value. Tests wait on what a user would see rather
 * than for a fixed time, so a loaded machine makes them slower, not red. The deadline only turns a hang into a
 * failure that says what never happened.
 */
export async function until<T>(
  what: string,
  probe: () => T | Promise<T>,
  ok: (value: T) => boolean = Boolean,
  options: { timeoutMs?: number; everyMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${describe(value)}`);
    await sleep(options.everyMs ?? 50);
  }
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 2000) ?? String(value);
  } catch {
    return String(value);
  }
}
