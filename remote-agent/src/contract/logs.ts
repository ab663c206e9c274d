/** The admin API's contract for logs (issue 13). Filled in by the logs module's author. */
export {};
