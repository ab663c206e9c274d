import type { UsageExportResult } from '../../../shared/ipc/contract';

/**
 * Finishes an export main ran: in browser mode main sent the content back and the browser saves it as a download; in
 * the app main wrote it to the file the admin picked, and `saved` tells them where. Cancelled: nothing.
 */
export function saveExport(result: UsageExportResult, saved: (path: string) => void): void {
  if (result.content !== null) {
    const url = URL.createObjectURL(new Blob([result.content], { type: result.mimeType }));
    const link = document.createElement('a');
    link.href = url;
    link.download = result.fileName;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } else if (result.savedTo) {
    saved(result.savedTo);
  }
}
