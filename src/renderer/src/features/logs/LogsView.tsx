/** Logs of a host (issue 13): being built. */
export default function LogsView({ hostId }: { hostId: string }) {
  return (
    <main className="workspace">
      <p className="empty padded">Logs of {hostId}: not built yet.</p>
    </main>
  );
}
