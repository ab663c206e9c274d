/**
 * The IPC contract of the health area (issue 13). Merged into `ipcContract` and `eventContract` in ./contract.ts.
 */
export const healthIpcContract = {};
export const healthEventContract = {};
