/** Health of a host (issue 13): being built. */
export default function HealthView({ hostId }: { hostId: string }) {
  return (
    <main className="workspace">
      <p className="empty padded">Health of {hostId}: not built yet.</p>
    </main>
  );
}
