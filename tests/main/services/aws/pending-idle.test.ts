import { describe, expect, it } from 'vitest';
import { savePendingIdle, takePendingIdle } from '../../../../src/main/services/aws/pending-idle';

/** The two preference calls of the panel store, kept in a map as SQLite keeps them (JSON values). */
function preferences() {
  const values = new Map<string, string>();
  return {
    values,
    preference: <T>(key: string): T | undefined => {
      const raw = values.get(key);
      return raw === undefined ? undefined : (JSON.parse(raw) as T);
    },
    setPreference: (key: string, value: unknown): void => void values.set(key, JSON.stringify(value)),
  };
}

describe('idle minutes chosen at launch, waiting for the deploy', () => {
  it('are given to the deploy once, then no more', () => {
    const store = preferences();
    savePendingIdle(store, 'h-1', 45);
    expect(store.values.get('pendingIdle:h-1')).toBe('45');
    expect(takePendingIdle(store, 'h-1')).toBe(45);
    expect(takePendingIdle(store, 'h-1')).toBeNull();
  });

  it('are nothing when the launch chose no auto-stop, and belong to their host only', () => {
    const store = preferences();
    savePendingIdle(store, 'h-1', null);
    savePendingIdle(store, 'h-2', 90);
    expect(store.values.has('pendingIdle:h-1')).toBe(false);
    expect(takePendingIdle(store, 'h-1')).toBeNull();
    expect(takePendingIdle(store, 'h-2')).toBe(90);
  });
});
