import { useCallback, useEffect, useState } from 'react';
import type { BackupInfo, BackupList, BackupSettings } from '../../../../shared/ipc/contract-backups';
import { formatDateTime, formatRelative } from '../../lib/format';
import { useStores } from '../../stores';
import { confirmDanger, handleError } from '../app/actions';

const formatBytes = (n: number): string =>
  n >= 1024 ** 3
    ? `${(n / 1024 ** 3).toFixed(2)} GB`
    : n >= 1024 ** 2
      ? `${(n / 1024 ** 2).toFixed(1)} MB`
      : `${Math.max(1, Math.round(n / 1024))} KB`;

/** What a restore of `backup` replaces on the host, in words, for the confirmation. */
function replacedBy(backup: BackupInfo): string {
  const { manifest } = backup;
  const secrets = manifest.secrets.included
    ? `its secrets (${manifest.secrets.files.join(', ') || 'none'})`
    : 'nothing of its secrets (the backup has none: the host keeps its own)';
  const homes = manifest.homes.slots.length ? ` and the homes of ${manifest.homes.slots.length} slot(s)` : '';
  return (
    `This replaces the host's database (users, API keys, quotas, usage, slots, settings) with the backup of ` +
    `${manifest.hostname} from ${formatDateTime(manifest.createdAt)}, ${secrets}${homes}. ` +
    `Anything changed since then is lost (the current database is kept on the host as backups/pre-restore-….db). ` +
    `The host's own admin token is kept. The agent restarts, migrates the schema and reconciles the slots.`
  );
}

/**
 * Backups of a host: the list (age, size, verified), Back up now, schedule and retention, the panel's key, download
 * with progress, upload from this computer and restore with a confirmation that names what is replaced.
 */
export default function BackupsView({ hostId }: { hostId: string }) {
  const stores = useStores();
  const [list, setList] = useState<BackupList | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [draft, setDraft] = useState<BackupSettings | null>(null);
  const [uploadPath, setUploadPath] = useState('');
  const [progress, setProgress] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  const notify = (message: string): void => stores.ui.getState().notify(message);

  useEffect(() => {
    let current = true;
    stores.ipc.invoke('backups:list', { hostId }).then(
      (next) => {
        if (!current) return;
        setList(next);
        setDraft((d) => d ?? next.settings);
        setError(null);
      },
      (err: unknown) => current && setError(err instanceof Error ? err.message : String(err)),
    );
    return () => {
      current = false;
    };
  }, [stores, hostId, generation]);

  useEffect(
    () =>
      stores.ipc.on('backups:progress', (event) => {
        if (event.hostId !== hostId) return;
        const what = event.direction === 'download' ? 'Downloading' : 'Uploading';
        setProgress(
          event.done
            ? null
            : `${what}… ${formatBytes(event.bytes)}${event.total ? ` of ${formatBytes(event.total)} (${Math.floor((100 * event.bytes) / event.total)} %)` : ''}`,
        );
      }),
    [stores, hostId],
  );

  const run = useCallback(
    async (label: string, action: () => Promise<void>) => {
      setBusy(label);
      try {
        await action();
      } catch (err) {
        handleError(stores, err, hostId);
      } finally {
        setBusy(null);
        setProgress(null);
        setGeneration((g) => g + 1);
      }
    },
    [stores, hostId],
  );

  const backUpNow = (): Promise<void> =>
    run('backup', async () => {
      const made = await stores.ipc.invoke('backups:run', { hostId });
      notify(`Backup written and verified (${formatBytes(made.size)}).`);
    });
  const saveSettings = (): Promise<void> =>
    run('settings', async () => {
      if (!draft) return;
      setDraft(await stores.ipc.invoke('backups:set-settings', { hostId, settings: draft }));
      notify('Backup settings saved.');
    });
  const download = (backup: BackupInfo): Promise<void> =>
    run('download', async () => {
      const result = await stores.ipc.invoke('backups:download', { hostId, id: backup.id });
      if (result.contentBase64 !== null) {
        const bytes = Uint8Array.from(atob(result.contentBase64), (c) => c.charCodeAt(0));
        const url = URL.createObjectURL(new Blob([bytes], { type: 'application/x-tar' }));
        const link = document.createElement('a');
        link.href = url;
        link.download = result.fileName;
        link.click();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
      } else if (result.savedTo) {
        notify(`Backup saved to ${result.savedTo}.`);
      }
    });
  const upload = (): Promise<void> =>
    run('upload', async () => {
      const uploaded = await stores.ipc.invoke('backups:upload', { hostId, path: uploadPath.trim() });
      notify(
        `Uploaded and verified: the backup of ${uploaded.manifest.hostname} from ${formatDateTime(uploaded.createdAt)}.`,
      );
      setUploadPath('');
    });
  const restoreUnknown = (backup: BackupInfo, message: string): void =>
    confirmDanger(
      stores,
      'Restore a backup from an unknown host?',
      `${message} Its signature is intact, but it was not made by a host this panel knows: anyone holding this panel's public key could have made it. Go on only if you know where the file comes from.`,
      'Restore a backup from an unknown host',
      () =>
        run('restore', async () => {
          const accepted = await stores.ipc.invoke('backups:restore', {
            hostId,
            id: backup.id,
            skipSecrets: false,
            allowUnknownSigner: true,
          });
          notify(accepted.message);
        }),
    );
  const restore = (backup: BackupInfo): void =>
    confirmDanger(stores, 'Restore this backup?', replacedBy(backup), 'Restore and restart the agent', () =>
      run('restore', async () => {
        try {
          const accepted = await stores.ipc.invoke('backups:restore', { hostId, id: backup.id, skipSecrets: false });
          notify(accepted.message);
        } catch (err) {
          // An unknown signer may be confirmed; a bad signature never (it is shown as the error it is).
          if ((err as { code?: string }).code !== 'BACKUP_SIGNER_UNKNOWN') throw err;
          restoreUnknown(backup, (err as Error).message);
        }
      }),
    );
  const uploadPicked = (): Promise<void> =>
    run('upload', async () => {
      const uploaded = await stores.ipc.invoke('backups:upload-picked', { hostId });
      if (uploaded)
        notify(
          `Uploaded and checked: the backup of ${uploaded.manifest.hostname} from ${formatDateTime(uploaded.createdAt)}.`,
        );
    });
  const exportKey = (): void =>
    confirmDanger(
      stores,
      'Export the backup key?',
      "This writes the panel's private backup key to a file you pick. Whoever has that file can open every backup sealed to this panel (databases, secrets, homes): keep it offline, never next to the backups. It is for `slotdeck-agent restore --key-file` on a host.",
      'Export key…',
      () =>
        run('export-key', async () => {
          const exported = await stores.ipc.invoke('backups:export-key', {});
          if (exported.savedTo) notify(`Backup key ${exported.keyId} written to ${exported.savedTo}.`);
        }),
    );
  const remove = (backup: BackupInfo): void =>
    confirmDanger(stores, 'Delete this backup?', `The file of ${backup.id} is deleted from the host.`, 'Delete', () =>
      run('delete', async () => {
        await stores.ipc.invoke('backups:delete', { hostId, id: backup.id });
      }),
    );
  const sealToThisPanel = (): Promise<void> =>
    run('key', async () => {
      const key = await stores.ipc.invoke('backups:register-key', { hostId });
      notify(`Secrets of later backups are sealed to this panel's key ${key.panelKeyId ?? ''}.`);
    });

  const status = list?.status;
  return (
    <main className="workspace admin-view backups-view" aria-label="Backups">
      <header className="view-header wrap">
        <h2>Backups</h2>
        <span className="muted">
          {status
            ? `Last: ${formatRelative(status.lastSuccessAt)}${status.nextAt ? ` · next ${formatRelative(status.nextAt)}` : ' · schedule off'}`
            : null}
        </span>
        <span className="spacer" />
        <button type="button" className="button small" onClick={() => setGeneration((g) => g + 1)}>
          Refresh
        </button>
        <button
          type="button"
          className="button small primary"
          disabled={busy !== null}
          onClick={() => void backUpNow()}
        >
          {busy === 'backup' ? 'Backing up…' : 'Back up now'}
        </button>
      </header>
      {error ? (
        <div className="banner error" role="alert">
          {error}
        </div>
      ) : null}
      {status?.lastError ? (
        <div className="banner error" role="alert">
          The last backup failed ({status.lastErrorAt ? formatRelative(status.lastErrorAt) : ''}): {status.lastError}
        </div>
      ) : null}
      {progress ? (
        <div className="banner" role="status" aria-label="Transfer progress">
          {progress}
        </div>
      ) : null}
      {list === null ? (
        error ? null : (
          <p className="empty padded">Loading…</p>
        )
      ) : (
        <div className="detail">
          {list.backups.length === 0 ? (
            <p className="empty padded">No backups on this host yet.</p>
          ) : (
            <table className="data-table" aria-label="Backups on this host">
              <thead>
                <tr>
                  <th>Made</th>
                  <th>Kind</th>
                  <th>Size</th>
                  <th>Checked</th>
                  <th>Contents</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {list.backups.map((backup) => (
                  <tr key={backup.id} data-backup-id={backup.id}>
                    <td title={backup.id}>
                      {formatDateTime(backup.createdAt)}
                      <div className="muted">{formatRelative(backup.createdAt)}</div>
                    </td>
                    <td>{backup.origin}</td>
                    <td>{formatBytes(backup.size)}</td>
                    <td>
                      <span className={`chip chip-${backup.verified ? 'ok' : 'danger'}`}>
                        {backup.verified ? 'verified' : 'not verified'}
                      </span>
                    </td>
                    <td>
                      {Object.values(backup.manifest.counts)
                        .reduce((a, b) => a + b, 0)
                        .toLocaleString()}{' '}
                      rows
                      <div className="muted">
                        {backup.manifest.secrets.included ? 'secrets sealed' : 'no secrets'}
                        {backup.manifest.homes.slots.length ? ` · ${backup.manifest.homes.slots.length} homes` : ''}
                      </div>
                    </td>
                    <td className="actions">
                      <button
                        type="button"
                        className="button small"
                        disabled={busy !== null}
                        onClick={() => void download(backup)}
                      >
                        Download
                      </button>
                      <button
                        type="button"
                        className="button small danger"
                        disabled={busy !== null}
                        onClick={() => restore(backup)}
                      >
                        Restore…
                      </button>
                      <button
                        type="button"
                        className="button small"
                        disabled={busy !== null}
                        onClick={() => remove(backup)}
                      >
                        Delete
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}

          {draft ? (
            <section className="form-section" aria-label="Schedule and retention">
              <h3>Schedule and retention</h3>
              <label className="inline">
                <input
                  type="checkbox"
                  checked={draft.enabled}
                  onChange={(e) => setDraft({ ...draft, enabled: e.target.checked })}
                />{' '}
                Back up every{' '}
                <input
                  type="number"
                  aria-label="Hours between backups"
                  min={1}
                  max={168}
                  value={draft.intervalHours}
                  onChange={(e) => setDraft({ ...draft, intervalHours: Number(e.target.value) })}
                />{' '}
                hours
              </label>
              <label className="inline">
                Keep the newest of the last{' '}
                <input
                  type="number"
                  aria-label="Daily backups kept"
                  min={1}
                  max={60}
                  value={draft.keepDaily}
                  onChange={(e) => setDraft({ ...draft, keepDaily: Number(e.target.value) })}
                />{' '}
                days and{' '}
                <input
                  type="number"
                  aria-label="Weekly backups kept"
                  min={0}
                  max={52}
                  value={draft.keepWeekly}
                  onChange={(e) => setDraft({ ...draft, keepWeekly: Number(e.target.value) })}
                />{' '}
                weeks
              </label>
              <label
                className="inline"
                title={
                  list.homesSupported
                    ? undefined
                    : 'Slots run as accounts of their own here: the agent cannot read their homes.'
                }
              >
                <input
                  type="checkbox"
                  disabled={!list.homesSupported}
                  checked={draft.includeHomes}
                  onChange={(e) => setDraft({ ...draft, includeHomes: e.target.checked })}
                />{' '}
                Include slot homes and work dirs (caches left out)
                {list.homesSupported ? '' : ' — not on isolated hosts'}
              </label>
              <button
                type="button"
                className="button small"
                disabled={busy !== null}
                onClick={() => void saveSettings()}
              >
                Save
              </button>
            </section>
          ) : null}

          <section className="form-section" aria-label="Backup key">
            <h3>Key</h3>
            <p className="muted">
              {list.key.registered
                ? `Every backup (database, secrets, homes) is sealed to key ${list.key.keyId} and signed by the host. Only a panel holding its private half (in its keychain), or its exported key file, can restore one.`
                : 'No backup key: no backup is written until this panel registers its key (it does when the list loads).'}
            </p>
            <button
              type="button"
              className="button small"
              disabled={busy !== null}
              onClick={() => void sealToThisPanel()}
            >
              Seal to this panel's key
            </button>{' '}
            <button type="button" className="button small" disabled={busy !== null} onClick={exportKey}>
              Export key…
            </button>
          </section>

          <section className="form-section" aria-label="Restore from a file">
            <h3>Restore from a file on this computer</h3>
            <p className="muted">
              Upload a backup (from this or another host); its signature and checksums are checked, it is listed above,
              and can then be restored. In the app, choose the file; in browser mode, type its path on the computer
              running Slotdeck (files of the browser's computer cannot be sent yet).
            </p>
            <button type="button" className="button small" disabled={busy !== null} onClick={() => void uploadPicked()}>
              Choose file…
            </button>{' '}
            <input
              type="text"
              aria-label="Backup file path"
              className="backup-path"
              placeholder="/path/to/slotdeck-backup-….tar"
              value={uploadPath}
              onChange={(e) => setUploadPath(e.target.value)}
            />{' '}
            <button
              type="button"
              className="button small"
              disabled={busy !== null || !uploadPath.trim()}
              onClick={() => void upload()}
            >
              Upload
            </button>
          </section>
        </div>
      )}
    </main>
  );
}
