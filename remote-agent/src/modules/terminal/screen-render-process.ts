import { renderScreen, type RenderJob } from './journal.js';

/**
 * The screen renderer's process (screen-renderer.ts): parses a snapshot and journal into a headless terminal and
 * serializes it, so that the agent's event loop never does. Jobs run one after another (each holds a whole screen
 * in memory); it says when it is ready, and ends with its parent's channel.
 */
let queue: Promise<void> = Promise.resolve();
process.on('message', (message: { id: number; job: RenderJob }) => {
  queue = queue.then(() =>
    renderScreen(message.job).then(
      (screen) => void process.send?.({ id: message.id, screen }),
      (error: unknown) =>
        void process.send?.({ id: message.id, error: error instanceof Error ? error.message : String(error) }),
    ),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true });
