import { request } from 'node:http';

/**
 * Sends only the headers of a request that claims a large body, and reads the answer. A server that refuses the
 * body by its Content-Length answers before reading it; sending the body for real would race that answer (the
 * client's write fails with EPIPE once the server has closed the connection).
 */
export function headersOnly(
  url: string,
  method: string,
  headers: Record<string, string | number>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(url, { method, headers });
    outgoing.on('response', (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => {
        outgoing.destroy();
        resolve({ status: response.statusCode ?? 0, body });
      });
    });
    outgoing.on('error', reject);
    outgoing.flushHeaders();
  });
}
