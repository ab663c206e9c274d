/** Backups of a host (issue 13): being built. */
export default function BackupsView({ hostId }: { hostId: string }) {
  return (
    <main className="workspace">
      <p className="empty padded">Backups of {hostId}: not built yet.</p>
    </main>
  );
}
