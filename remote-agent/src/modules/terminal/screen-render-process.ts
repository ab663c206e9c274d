import { renderScreen, type RenderJob } from './journal.js';

/**
 * The screen renderer's process (screen-renderer.ts): parses a snapshot and journal into a headless terminal and
 * serializes it, one job at a time, so that the agent's event loop never does. It ends with its parent's channel.
 */
process.on('message', (message: { id: number; job: RenderJob }) => {
  renderScreen(message.job).then(
    (screen) => process.send?.({ id: message.id, screen }),
    (error: unknown) =>
      process.send?.({ id: message.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
process.on('disconnect', () => process.exit(0));
