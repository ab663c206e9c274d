import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { KeyedMutex } from '../../../remote-agent/src/util/keyed-mutex.js';

describe('KeyedMutex', () => {
  it('runs tasks of one key one at a time, in the order they were asked for', async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    let running = 0;
    let most = 0;
    const task = (name: string, ms: number) => async (): Promise<string> => {
      running += 1;
      most = Math.max(most, running);
      log.push(`start ${name}`);
      await sleep(ms);
      log.push(`end ${name}`);
      running -= 1;
      return name;
    };
    const results = await Promise.all([
      mutex.run('slot', task('a', 30)),
      mutex.run('slot', task('b', 5)),
      mutex.run('slot', task('c', 15)),
    ]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(most).toBe(1);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  it('runs tasks of different keys at the same time', async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    const task = (name: string, ms: number) => async (): Promise<void> => {
      log.push(`start ${name}`);
      await sleep(ms);
      log.push(`end ${name}`);
    };
    await Promise.all([mutex.run('one', task('one', 40)), mutex.run('two', task('two', 5))]);
    expect(log).toEqual(['start one', 'start two', 'end two', 'end one']);
  });

  it("hands a failure to its own caller and still runs the key's next task", async () => {
    const mutex = new KeyedMutex();
    const failing = mutex.run('slot', () => Promise.reject(new Error('start failed')));
    const next = mutex.run('slot', () => Promise.resolve('next ran'));
    await expect(failing).rejects.toThrow('start failed');
    await expect(next).resolves.toBe('next ran');
    await expect(mutex.run('slot', () => Promise.resolve('later ran'))).resolves.toBe('later ran');
  });
});
