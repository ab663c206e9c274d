/**
 * The IPC contract of the alerts area (issue 13). Merged into `ipcContract` and `eventContract` in ./contract.ts.
 */
export const alertsIpcContract = {};
export const alertsEventContract = {};
