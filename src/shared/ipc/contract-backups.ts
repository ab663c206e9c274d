import { z } from 'zod';
import {
  BackupId,
  BackupInfo,
  BackupList,
  BackupSettings,
  RestoreAccepted,
} from '../../../remote-agent/src/contract/backups';

/**
 * The IPC contract of the backups area (issue 13): a host's backups, Back up now, the schedule, the panel's key,
 * download (with progress), upload and restore. Merged into `ipcContract` and `eventContract` in ./contract.ts.
 */
const HostId = z.string().regex(/^[a-z0-9-]{1,40}$/, { message: 'must be a host id' });

export const BackupKeyInfo = z.object({
  /** This panel's key (in the OS keychain); null until it is first needed. */
  panelKeyId: z.string().nullable(),
  /** The key the host seals to; null when none is registered. */
  hostKeyId: z.string().nullable(),
  matches: z.boolean(),
});
export type BackupKeyInfo = z.infer<typeof BackupKeyInfo>;

/** A download: written to the file the admin picked (the app), or returned for the page to save (browser mode). */
export const BackupDownloadResult = z.object({
  fileName: z.string(),
  bytes: z.number(),
  savedTo: z.string().nullable(),
  contentBase64: z.string().nullable(),
});
export type BackupDownloadResult = z.infer<typeof BackupDownloadResult>;

export const BackupProgressEvent = z.object({
  hostId: z.string(),
  direction: z.enum(['download', 'upload']),
  id: z.string().nullable(),
  bytes: z.number(),
  total: z.number().nullable(),
  done: z.boolean(),
});

const HostInput = z.strictObject({ hostId: HostId });
const BackupInput = z.strictObject({ hostId: HostId, id: BackupId });

export const backupsIpcContract = {
  'backups:list': { input: HostInput, output: BackupList },
  'backups:run': { input: HostInput, output: BackupInfo },
  'backups:set-settings': {
    input: z.strictObject({ hostId: HostId, settings: BackupSettings }),
    output: BackupSettings,
  },
  'backups:key': { input: HostInput, output: BackupKeyInfo },
  'backups:register-key': { input: HostInput, output: BackupKeyInfo },
  'backups:delete': { input: BackupInput, output: z.object({ deleted: z.literal(true) }) },
  'backups:download': { input: BackupInput, output: BackupDownloadResult },
  'backups:upload': {
    input: z.strictObject({
      hostId: HostId,
      /** The backup file on this computer (absolute path). */
      path: z
        .string()
        .min(1)
        .max(4096)
        .refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), { message: 'must be an absolute path' }),
    }),
    output: BackupInfo,
  },
  'backups:upload-picked': { input: HostInput, output: BackupInfo.nullable() },
  'backups:restore': {
    input: z.strictObject({
      hostId: HostId,
      id: BackupId,
      skipSecrets: z.boolean().default(false),
      /** The admin confirmed restoring a backup signed by a host this panel does not know (never a bad signature). */
      allowUnknownSigner: z.boolean().default(false),
    }),
    output: RestoreAccepted,
  },
  /** Writes the panel's private backup key to a file the admin picks (the app only; never to the page). */
  'backups:export-key': {
    input: z.strictObject({}),
    output: z.object({ savedTo: z.string().nullable(), keyId: z.string() }),
  },
};
export const backupsEventContract = {
  'backups:progress': BackupProgressEvent,
};
export type {
  BackupInfo,
  BackupList,
  BackupSettings,
  RestoreAccepted,
} from '../../../remote-agent/src/contract/backups';
