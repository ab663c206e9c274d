import { describe, expect, it } from 'vitest';
import { formErrors, IpcClientError } from '../../../src/renderer/src/lib/ipc';

const invalid = (...lines: string[]): IpcClientError =>
  new IpcClientError({
    code: 'IPC_INPUT_INVALID',
    message: lines.join('; '),
    details: { fields: lines.join('\n') },
  });

describe('formErrors', () => {
  const labels = { port: 'SSH port', privateKey: 'Private key', agentPort: 'Agent port' };

  it('puts each invalid input under its field, in a sentence without the schema path', () => {
    const errors = formErrors(invalid('port: ports are 1-65535', 'auth.privateKey: paste a private key'), labels);
    expect(errors.fields).toEqual({ port: 'Ports are 1-65535.', privateKey: 'Paste a private key.' });
    expect(errors.message).toBeNull();
  });

  it('finds the field under an update’s `changes.` prefix, and does not mistake agentPort for port', () => {
    const errors = formErrors(invalid('changes.agentPort: must be a whole number'), labels);
    expect(errors.fields).toEqual({ agentPort: 'Must be a whole number.' });
  });

  it('shows what belongs to no field below the form, without the program’s name for it', () => {
    const errors = formErrors(invalid('adminToken: too short'), labels);
    expect(errors.fields).toEqual({});
    expect(errors.message).toBe('Check the form: Too short.');
    expect(errors.message).not.toContain('adminToken');
  });

  it('keeps any other failure’s own message', () => {
    const errors = formErrors(new IpcClientError({ code: 'SSH_UNREACHABLE', message: 'Nothing answers.' }), labels);
    expect(errors).toEqual({ fields: {}, message: 'Nothing answers.' });
  });
});
