import { useUi } from '../../stores';

/**
 * Browser mode, while the socket to Slotdeck is down (it stopped, or is restarting): one state over the whole page,
 * instead of a banner plus every view's and every poll's own "lost the connection". The page reconnects by itself.
 */
export function OfflineState() {
  const offline = useUi((s) => s.offline);
  if (!offline) return null;
  return (
    <div className="offline-overlay" data-testid="panel-offline">
      <div className="offline-card" role="alert" aria-live="assertive">
        <h2>Slotdeck is not running</h2>
        <p>
          This page lost its connection to Slotdeck. If you stopped it, start it again with <code>npm start</code>: this
          page reconnects by itself. Your slots kept running meanwhile.
        </p>
        <p className="muted">
          If Slotdeck printed that it now listens on another port, close this page and open the new link it printed.
        </p>
        <p className="offline-waiting" aria-hidden="true">
          <span className="state-dot host-reconnecting" /> Waiting for Slotdeck…
        </p>
      </div>
    </div>
  );
}

/** Browser mode, not signed in (a used or expired link, a signed-out browser): a page that says what to do next. */
export function SignedOutPage({ message }: { message: string }) {
  return (
    <main className="signed-out" data-testid="signed-out">
      <div className="signed-out-card">
        <h1>Slotdeck</h1>
        <p className="signed-out-message" role="alert">
          {message}
        </p>
        <h2>To open Slotdeck</h2>
        <ol>
          <li>
            Look in the terminal where Slotdeck runs (where you typed <code>npm start</code>) and open the newest link
            it printed: each link works once, within 10 minutes.
          </li>
          <li>
            No new link there? Stop Slotdeck with Ctrl-C and start it again with <code>npm start</code>: it prints a
            fresh one. Your slots keep running meanwhile.
          </li>
          <li>
            Still signed in in another browser window? Use Sign out in its status bar, then open the new link Slotdeck
            prints.
          </li>
        </ol>
      </div>
    </main>
  );
}
