/**
 * The IPC contract of the backups area (issue 13). Merged into `ipcContract` and `eventContract` in ./contract.ts.
 */
export const backupsIpcContract = {};
export const backupsEventContract = {};
