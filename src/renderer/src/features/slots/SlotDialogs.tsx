import { useState, type FormEvent } from 'react';
import type { CreateSlotBody } from '../../../../shared/ipc/contract';
import { Dialog, Field, FormFooter } from '../../components/Dialog';
import { useHosts, useStores } from '../../stores';
import { handleError } from '../app/actions';

type Preset = 'shell' | 'claudebox' | 'docker-exec' | 'custom';

/** Splits `a "b c" d` into arguments, keeping quoted spaces. */
export function splitArgs(text: string): string[] {
  const args: string[] = [];
  for (const match of text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) args.push(match[1] ?? match[2] ?? match[3] ?? '');
  return args;
}

/** `KEY=value` lines into an env object; returns the line that is not one. */
export function parseEnv(text: string): { env: Record<string, string>; bad: string | null } {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!match) return { env, bad: line };
    env[match[1]!] = match[2]!;
  }
  return { env, bad: null };
}

export function CreateSlotDialog({ hostId }: { hostId: string }) {
  const stores = useStores();
  const host = useHosts((s) => s.hosts.find((h) => h.id === hostId));
  const [name, setName] = useState('');
  const [preset, setPreset] = useState<Preset>('shell');
  const [container, setContainer] = useState('');
  const [command, setCommand] = useState('');
  const [args, setArgs] = useState('');
  const [workDir, setWorkDir] = useState('');
  const [env, setEnv] = useState('');
  const [memory, setMemory] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const close = (): void => stores.ui.getState().close();

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const parsedEnv = parseEnv(env);
    if (parsedEnv.bad) {
      setError(`"${parsedEnv.bad}" is not a KEY=value line.`);
      return;
    }
    const commandSpec: CreateSlotBody['command'] =
      preset === 'shell'
        ? { preset: 'shell' }
        : preset === 'claudebox'
          ? { preset: 'claudebox', ...(args.trim() ? { args: splitArgs(args) } : {}) }
          : preset === 'docker-exec'
            ? { preset: 'docker-exec', container: container.trim() }
            : { preset: 'custom', command: command.trim(), ...(args.trim() ? { args: splitArgs(args) } : {}) };
    const body: CreateSlotBody = {
      name: name.trim(),
      command: commandSpec,
      env: parsedEnv.env,
      ...(workDir.trim() ? { workDir: workDir.trim() } : {}),
      ...(memory.trim() ? { memoryLimitMb: Number(memory) } : {}),
    };
    setBusy(true);
    setError(null);
    try {
      const slot = await stores.slots.getState().create(hostId, body);
      close();
      stores.ui.getState().setView('consoles');
      stores.consoles.getState().open({ hostId, slotId: slot.id, mode: 'writable' });
    } catch (err) {
      setBusy(false);
      if ((err as { code?: string }).code === 'HOST_NOT_CONNECTED') {
        close();
        handleError(stores, err, hostId);
        return;
      }
      setError((err as Error).message);
    }
  };

  return (
    <Dialog
      title={`New slot on ${host?.name ?? 'host'}`}
      onClose={close}
      footer={
        <FormFooter form="slot-form" busy={busy} label="Create and open" busyLabel="Creating…" onCancel={close} />
      }
    >
      <form id="slot-form" className="form" onSubmit={(event) => void submit(event)}>
        <Field label="Name" hint="Letters, digits, '.', '_' or '-'.">
          <input
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder="alice"
            autoFocus
            required
            pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}"
          />
        </Field>
        <fieldset className="segmented" aria-label="What the slot runs">
          {(['shell', 'claudebox', 'docker-exec', 'custom'] as const).map((value) => (
            <label key={value} className={preset === value ? 'checked' : ''}>
              <input
                type="radio"
                name="preset"
                value={value}
                checked={preset === value}
                onChange={() => setPreset(value)}
              />
              {{ shell: 'Login shell', claudebox: 'ClaudeBox', 'docker-exec': 'Docker exec', custom: 'Command' }[value]}
            </label>
          ))}
        </fieldset>
        {preset === 'docker-exec' ? (
          <Field label="Container" hint="Runs: docker exec -it <container> bash">
            <input value={container} onChange={(e) => setContainer(e.target.value)} required />
          </Field>
        ) : null}
        {preset === 'custom' ? (
          <Field label="Program">
            <input value={command} onChange={(e) => setCommand(e.target.value)} placeholder="claude" required />
          </Field>
        ) : null}
        {preset === 'custom' || preset === 'claudebox' ? (
          <Field label="Arguments">
            <input value={args} onChange={(e) => setArgs(e.target.value)} placeholder='--model "claude-sonnet-4"' />
          </Field>
        ) : null}
        <details className="advanced">
          <summary>More</summary>
          <Field label="Work directory" hint="An existing folder on the host; a fresh one when empty.">
            <input value={workDir} onChange={(e) => setWorkDir(e.target.value)} placeholder="/srv/projects/app" />
          </Field>
          <Field label="Environment" hint="KEY=value, one per line.">
            <textarea value={env} onChange={(e) => setEnv(e.target.value)} rows={3} spellCheck={false} />
          </Field>
          <Field label="Memory limit (MB)" hint="Restarted when all its processes together use more.">
            <input value={memory} onChange={(e) => setMemory(e.target.value)} inputMode="numeric" />
          </Field>
        </details>
        {error ? (
          <p className="form-error" role="alert">
            {error}
          </p>
        ) : null}
      </form>
    </Dialog>
  );
}

export function DeleteSlotDialog({ hostId, slotId, name }: { hostId: string; slotId: string; name: string }) {
  const stores = useStores();
  const [removeFolders, setRemoveFolders] = useState(false);
  const close = (): void => stores.ui.getState().close();
  const remove = async (): Promise<void> => {
    close();
    try {
      await stores.slots.getState().remove(hostId, slotId, removeFolders ? 'remove' : 'keep');
      stores.consoles.getState().closeSlot(hostId, slotId);
      stores.ui.getState().notify(`Slot ${name} deleted${removeFolders ? ' with its folders' : ''}.`);
    } catch (error) {
      handleError(stores, error, hostId);
    }
  };
  return (
    <Dialog
      title={`Delete slot ${name}?`}
      onClose={close}
      tone="danger"
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="button" onClick={close} autoFocus>
            Cancel
          </button>
          <button type="button" className="button danger" onClick={() => void remove()}>
            Delete slot
          </button>
        </>
      }
    >
      <p>Its program stops and the slot is forgotten.</p>
      <label className="checkbox">
        <input type="checkbox" checked={removeFolders} onChange={(e) => setRemoveFolders(e.target.checked)} />
        Also remove its home and work folders (a work folder you chose is always kept)
      </label>
    </Dialog>
  );
}

export function ConfirmDialog({
  title,
  message,
  confirm,
  danger,
  run,
}: {
  title: string;
  message: string;
  confirm: string;
  danger?: boolean | undefined;
  run: () => Promise<void>;
}) {
  const stores = useStores();
  const close = (): void => stores.ui.getState().close();
  return (
    <Dialog
      title={title}
      onClose={close}
      tone={danger ? 'danger' : 'normal'}
      footer={
        <>
          <span className="spacer" />
          <button type="button" className="button" onClick={close} autoFocus>
            Cancel
          </button>
          <button
            type="button"
            className={`button ${danger ? 'danger' : 'primary'}`}
            onClick={() => {
              close();
              void run().catch((error: unknown) => handleError(stores, error));
            }}
          >
            {confirm}
          </button>
        </>
      }
    >
      <p>{message}</p>
    </Dialog>
  );
}
