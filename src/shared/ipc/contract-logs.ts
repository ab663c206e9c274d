/**
 * The IPC contract of the logs area (issue 13). Merged into `ipcContract` and `eventContract` in ./contract.ts.
 */
export const logsIpcContract = {};
export const logsEventContract = {};
