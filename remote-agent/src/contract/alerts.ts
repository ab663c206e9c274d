/** The admin API's contract for alerts (issue 13). Filled in by the alerts module's author. */
export {};
