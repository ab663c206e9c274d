/** The app shell: hosts and their slots on the left, the selected slot's console on the right. */
export function App() {
  return (
    <div className="shell">
      <aside className="sidebar" aria-label="Hosts">
        <h1 className="brand">Slotdeck</h1>
        <p className="empty">No hosts yet.</p>
      </aside>
      <main className="workspace">
        <div className="empty-state">
          <h2>Nothing open</h2>
          <p>Add a host, then open one of its slots to work in its console.</p>
        </div>
      </main>
    </div>
  );
}
