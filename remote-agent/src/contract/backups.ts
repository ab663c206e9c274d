/** The admin API's contract for backups (issue 13). Filled in by the backups module's author. */
export {};
