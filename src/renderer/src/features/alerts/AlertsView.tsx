/** Alerts of a host (issue 13): being built. */
export default function AlertsView({ hostId }: { hostId: string }) {
  return (
    <main className="workspace">
      <p className="empty padded">Alerts of {hostId}: not built yet.</p>
    </main>
  );
}
