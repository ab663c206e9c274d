/** The admin API's contract for metrics (issue 13). Filled in by the metrics module's author. */
export {};
