import { BackupKeys } from '../services/backups/keys';
import { BackupService } from '../services/backups/service';
import type { Handlers } from './dispatch';
import type { HandlerServices } from './handlers';

type BackupsChannel =
  | 'backups:list'
  | 'backups:run'
  | 'backups:set-settings'
  | 'backups:key'
  | 'backups:register-key'
  | 'backups:delete'
  | 'backups:download'
  | 'backups:upload'
  | 'backups:restore'
  | 'backups:upload-picked'
  | 'backups:export-key';

/** The backups area's IPC handlers (issue 13): each a call to the host's agent; the backup key stays in main. */
export function createBackupsHandlers(services: HandlerServices): Pick<Handlers, BackupsChannel> {
  const backups = new BackupService({
    client: (hostId) => services.hosts.client(hostId),
    keys: new BackupKeys(services.vault),
    progress: (event) => services.events?.emit('backups:progress', event),
    pickSaveFile: services.pickSaveFile,
    pickOpenFile: services.pickOpenFile,
    signers: {
      hostIds: () => services.store.listHosts().map((host) => host.id),
      get: (hostId) => services.store.preference<string[]>(`backupSigners:${hostId}`) ?? [],
      set: (hostId, keys) => services.store.setPreference(`backupSigners:${hostId}`, keys),
    },
  });
  return {
    'backups:list': ({ hostId }, { signal }) => backups.list(hostId, signal),
    'backups:run': ({ hostId }, { signal }) => backups.run(hostId, signal),
    'backups:set-settings': ({ hostId, settings }, { signal }) => backups.setSettings(hostId, settings, signal),
    'backups:key': ({ hostId }, { signal }) => backups.keyInfo(hostId, signal),
    'backups:register-key': ({ hostId }, { signal }) => backups.registerKey(hostId, signal),
    'backups:delete': ({ hostId, id }, { signal }) => backups.delete(hostId, id, signal),
    'backups:download': ({ hostId, id }, { signal }) => backups.download(hostId, id, signal),
    'backups:upload': ({ hostId, path }, { signal }) => backups.upload(hostId, path, signal),
    'backups:restore': ({ hostId, id, skipSecrets, allowUnknownSigner }, { signal }) =>
      backups.restore(hostId, id, skipSecrets, allowUnknownSigner, signal),
    'backups:upload-picked': ({ hostId }, { signal }) => backups.uploadPicked(hostId, signal),
    'backups:export-key': () => backups.exportKey(),
  };
}
