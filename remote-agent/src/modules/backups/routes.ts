import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import {
  AgentErrorCode,
  BACKUP_FILE_PATH,
  BACKUP_UPLOAD_PATH,
  BackupIdParams,
  backupsApi,
  BackupInfo,
} from '../../contract/index.js';
import { AppError } from '../../errors.js';
import { bindRoute, toIssues } from '../../http/route.js';
import type { BackupService } from './service.js';

function parseParams(value: unknown): { id: string } {
  const parsed = BackupIdParams.safeParse(value);
  if (!parsed.success) {
    const issues = toIssues('params', parsed.error);
    throw new AppError(
      AgentErrorCode.VALIDATION_FAILED,
      400,
      `Invalid request: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      issues,
    );
  }
  return parsed.data;
}

export async function registerBackupRoutes(app: FastifyInstance, backups: BackupService): Promise<void> {
  bindRoute(app, backupsApi.listBackups, () => backups.list());
  bindRoute(app, backupsApi.runBackup, () => backups.run('manual'));
  bindRoute(app, backupsApi.getBackupSettings, () => backups.settings());
  bindRoute(app, backupsApi.setBackupSettings, ({ body }) => backups.setSettings(body));
  bindRoute(app, backupsApi.getBackupSigningKey, () => backups.signingPublicKey());
  bindRoute(app, backupsApi.registerBackupKey, ({ body }) => backups.registerKey(body.publicKey));
  bindRoute(app, backupsApi.deleteBackup, ({ params }) => {
    backups.delete(params.id);
    return { deleted: true as const };
  });
  bindRoute(app, backupsApi.restoreBackup, ({ params, body }) => backups.restore(params.id, body));

  // Not JSON: the file is streamed both ways, so these two are registered by hand with the same checks.
  app.get(BACKUP_FILE_PATH, { config: { auth: 'admin' } }, (request, reply) => {
    const { id } = parseParams(request.params);
    const { file, info } = backups.fileOf(id);
    return reply
      .header('content-type', 'application/x-tar')
      .header('content-length', String(info.size))
      .header('content-disposition', `attachment; filename="slotdeck-${id}.tar"`)
      .header('cache-control', 'no-store')
      .send(createReadStream(file));
  });
  await app.register((scope, _options, done) => {
    // The body is the backup file itself, streamed to disk (not buffered, not limited by the JSON body limit).
    scope.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
    scope.put(BACKUP_UPLOAD_PATH, { config: { auth: 'admin' } }, async (request, reply) => {
      if (request.headers['content-type']?.split(';')[0]?.trim() !== 'application/octet-stream')
        throw new AppError(
          AgentErrorCode.VALIDATION_FAILED,
          415,
          'Send the backup file as the body with Content-Type: application/octet-stream.',
        );
      const length = request.headers['content-length'] ? Number(request.headers['content-length']) : null;
      const info = await backups.receiveUpload(request.body as Readable, Number.isFinite(length) ? length : null);
      reply.status(201);
      return BackupInfo.parse(info);
    });
    done();
  });
}
