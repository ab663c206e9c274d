import { useEffect, useState, type FormEvent } from 'react';
import type { CreateSlotBody, IpcInput, Slot } from '../../../../shared/ipc/contract';
import { Dialog, Field, FormFooter } from '../../components/Dialog';
import { useHosts, useSlots, useStores, useUsers } from '../../stores';
import { handleError } from '../app/actions';
import { Segmented } from '../../components/Segmented';

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

type SlotCommandSpec = CreateSlotBody['command'];

/** Arguments back into the text splitArgs reads: quoted where they hold spaces or quotes. */
export function joinArgs(args: readonly string[]): string {
  return args
    .map((arg) => (arg !== '' && !/[\s"']/.test(arg) ? arg : arg.includes('"') ? `'${arg}'` : `"${arg}"`))
    .join(' ');
}

/** What the slot form holds, as the admin typed it. */
export interface SlotForm {
  name: string;
  preset: Preset;
  /** The shell of a `shell` slot that named one (kept as it was; the form does not edit it). */
  shell: string;
  container: string;
  command: string;
  args: string;
  workDir: string;
  env: string;
  memory: string;
  ownerId: string;
  metered: boolean;
}

const EMPTY_FORM: SlotForm = {
  name: '',
  preset: 'shell',
  shell: '',
  container: '',
  command: '',
  args: '',
  workDir: '',
  env: '',
  memory: '',
  ownerId: '',
  metered: false,
};

/** The form of an existing slot, for editing it. */
export function formOfSlot(slot: Slot): SlotForm {
  const command = slot.command;
  return {
    ...EMPTY_FORM,
    name: slot.name,
    preset: command.preset,
    shell: command.preset === 'shell' || command.preset === 'docker-exec' ? (command.shell ?? '') : '',
    container: command.preset === 'docker-exec' ? command.container : '',
    command: command.preset === 'custom' ? command.command : '',
    args: command.preset === 'custom' || command.preset === 'claudebox' ? joinArgs(command.args ?? []) : '',
    workDir: slot.workDir,
    env: Object.entries(slot.env)
      .map(([key, value]) => `${key}=${value}`)
      .join('\n'),
    memory: slot.memoryLimitMb === null ? '' : String(slot.memoryLimitMb),
    ownerId: slot.ownerId ?? '',
    metered: slot.metered !== null,
  };
}

/** The command the form describes, as the agent takes it. */
export function commandOfForm(form: SlotForm): SlotCommandSpec {
  const args = form.args.trim() ? { args: splitArgs(form.args) } : {};
  switch (form.preset) {
    case 'shell':
      return { preset: 'shell', ...(form.shell ? { shell: form.shell } : {}) };
    case 'claudebox':
      return { preset: 'claudebox', ...args };
    case 'docker-exec':
      return { preset: 'docker-exec', container: form.container.trim(), ...(form.shell ? { shell: form.shell } : {}) };
    case 'custom':
      return { preset: 'custom', command: form.command.trim(), ...args };
  }
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const sortedEnv = (env: Record<string, string>): Array<[string, string]> =>
  Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/**
 * What an edit changes, as the agent's PATCH takes it, and whether the slot's program has to start again for it
 * (command, env, metering, owner; the memory limit too where the slot runs as its own account: a cgroup limit).
 */
export function slotChanges(
  slot: Slot,
  form: SlotForm,
  env: Record<string, string>,
): { changes: IpcInput<'slots:update'>['changes']; restart: boolean } {
  const changes: IpcInput<'slots:update'>['changes'] = {};
  let restart = false;
  if (form.name.trim() !== slot.name) changes.name = form.name.trim();
  const command = commandOfForm(form);
  if (!sameJson(command, slot.command)) {
    changes.command = command;
    restart = true;
  }
  if (!sameJson(sortedEnv(env), sortedEnv(slot.env))) {
    changes.env = env;
    restart = true;
  }
  const memory = form.memory.trim() ? Number(form.memory) : null;
  if (memory !== slot.memoryLimitMb) {
    changes.memoryLimitMb = memory;
    if (slot.account) restart = true;
  }
  const ownerId = form.ownerId || null;
  if (ownerId !== slot.ownerId) {
    changes.ownerId = ownerId;
    // A new owner gets a fresh home: the program ends so the previous owner's session does not carry on.
    restart = true;
  }
  if (form.metered !== (slot.metered !== null)) {
    changes.metered = form.metered;
    restart = true;
  }
  return { changes, restart };
}

/** The fields a slot is made of, shared by the create and edit dialogs. */
function SlotFields({
  hostId,
  form,
  change,
  editing,
}: {
  hostId: string;
  form: SlotForm;
  change: (patch: Partial<SlotForm>) => void;
  editing: boolean;
}) {
  const stores = useStores();
  const users = useUsers((s) => s.byHost[hostId]);
  useEffect(() => {
    // Owners to choose from; a host without the users module just offers none.
    if (!users) void stores.users.getState().load(hostId);
  }, [hostId, stores, users]);
  const owners = (users?.users ?? []).filter((user) => !user.deletedAt);
  const ownerKnown = form.ownerId === '' || owners.some((user) => user.id === form.ownerId);
  return (
    <>
      <Field label="Name" hint="Letters, digits, '.', '_' or '-'.">
        <input
          value={form.name}
          onChange={(e) => change({ name: e.target.value })}
          placeholder="alice"
          autoFocus
          required
          pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}"
        />
      </Field>
      <Segmented
        label="What the slot runs"
        name="preset"
        options={[
          { value: 'shell', label: 'Login shell' },
          { value: 'claudebox', label: 'ClaudeBox' },
          { value: 'docker-exec', label: 'Docker exec' },
          { value: 'custom', label: 'Command' },
        ]}
        value={form.preset}
        onChange={(value) => change({ preset: value })}
      />
      {form.preset === 'docker-exec' ? (
        <Field label="Container" hint="Runs: docker exec -it <container> bash">
          <input value={form.container} onChange={(e) => change({ container: e.target.value })} required />
        </Field>
      ) : null}
      {form.preset === 'custom' ? (
        <Field label="Program">
          <input
            value={form.command}
            onChange={(e) => change({ command: e.target.value })}
            placeholder="claude"
            required
          />
        </Field>
      ) : null}
      {form.preset === 'custom' || form.preset === 'claudebox' ? (
        <Field label="Arguments">
          <input
            value={form.args}
            onChange={(e) => change({ args: e.target.value })}
            placeholder='--model "claude-sonnet-4"'
          />
        </Field>
      ) : null}
      <Field
        label="Owner"
        hint={owners.length === 0 && !users?.error ? 'No users on this host yet (add them in Users).' : undefined}
      >
        <select
          value={form.ownerId}
          onChange={(e) => change({ ownerId: e.target.value, ...(e.target.value ? {} : { metered: false }) })}
        >
          <option value="">No owner</option>
          {ownerKnown ? null : <option value={form.ownerId}>{form.ownerId}</option>}
          {owners.map((user) => (
            <option key={user.id} value={user.id}>
              {user.displayName ? `${user.displayName} (${user.username})` : user.username}
            </option>
          ))}
        </select>
      </Field>
      <label className="checkbox">
        <input
          type="checkbox"
          checked={form.metered}
          disabled={form.ownerId === ''}
          onChange={(e) => change({ metered: e.target.checked })}
        />
        Metered: Claude Code in the slot goes through this host&apos;s gateway with a key of the owner&apos;s, within
        the owner&apos;s quotas{form.ownerId === '' ? ' (choose an owner first)' : ''}
      </label>
      <details className="advanced" open={editing && (form.env !== '' || form.memory !== '')}>
        <summary>More</summary>
        {editing ? (
          <p className="field-hint">Work directory: {form.workDir} (chosen when the slot was made)</p>
        ) : (
          <Field label="Work directory" hint="An existing folder on the host; a fresh one when empty.">
            <input
              value={form.workDir}
              onChange={(e) => change({ workDir: e.target.value })}
              placeholder="/srv/projects/app"
            />
          </Field>
        )}
        <Field label="Environment" hint="KEY=value, one per line.">
          <textarea value={form.env} onChange={(e) => change({ env: e.target.value })} rows={3} spellCheck={false} />
        </Field>
        <Field label="Memory limit (MB)" hint="Restarted when all its processes together use more.">
          <input value={form.memory} onChange={(e) => change({ memory: e.target.value })} inputMode="numeric" />
        </Field>
      </details>
    </>
  );
}

export function CreateSlotDialog({ hostId }: { hostId: string }) {
  const stores = useStores();
  const host = useHosts((s) => s.hosts.find((h) => h.id === hostId));
  const [form, setForm] = useState<SlotForm>(EMPTY_FORM);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const close = (): void => stores.ui.getState().close();
  const change = (patch: Partial<SlotForm>): void => setForm((current) => ({ ...current, ...patch }));

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    const parsedEnv = parseEnv(form.env);
    if (parsedEnv.bad) {
      setError(`"${parsedEnv.bad}" is not a KEY=value line.`);
      return;
    }
    const body: CreateSlotBody = {
      name: form.name.trim(),
      command: commandOfForm(form),
      env: parsedEnv.env,
      ...(form.workDir.trim() ? { workDir: form.workDir.trim() } : {}),
      ...(form.memory.trim() ? { memoryLimitMb: Number(form.memory) } : {}),
      ...(form.ownerId ? { ownerId: form.ownerId, metered: form.metered } : {}),
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
      showFailure(stores, hostId, err, close, setError);
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
        <SlotFields hostId={hostId} form={form} change={change} editing={false} />
        {error ? (
          <p className="form-error" role="alert">
            {error}
          </p>
        ) : null}
      </form>
    </Dialog>
  );
}

/**
 * A create or edit that failed: a host that is not connected closes the dialog and says so where the host is shown;
 * anything else stays in the dialog, under the form, for the admin to correct.
 */
function showFailure(
  stores: ReturnType<typeof useStores>,
  hostId: string,
  err: unknown,
  close: () => void,
  setError: (message: string) => void,
): void {
  if ((err as { code?: string }).code === 'HOST_NOT_CONNECTED') {
    close();
    handleError(stores, err, hostId);
    return;
  }
  setError((err as Error).message);
}

/** Edits a slot in place: name, command, env, memory limit, owner and metering. */
export function EditSlotDialog({ hostId, slotId }: { hostId: string; slotId: string }) {
  const stores = useStores();
  const slot = useSlots((s) => s.byHost[hostId]?.slots.find((candidate) => candidate.id === slotId));
  // The form starts from the slot as it was when the dialog opened; polling does not overwrite what is typed.
  const [form, setForm] = useState<SlotForm | null>(() => (slot ? formOfSlot(slot) : null));
  // Changes are what the admin changed in the form, against what the form started from: a field that someone else
  // changed meanwhile (another window, the CLI) is not sent back with its old value.
  const [opened] = useState(slot);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [resetHome, setResetHome] = useState(false);
  const close = (): void => stores.ui.getState().close();
  const change = (patch: Partial<SlotForm>): void =>
    setForm((current) => (current ? { ...current, ...patch } : current));

  if (!slot || !form) {
    return (
      <Dialog title="Edit slot" onClose={close}>
        <p>This slot is not on the host any more.</p>
      </Dialog>
    );
  }
  const parsedEnv = parseEnv(form.env);
  const { changes, restart } = slotChanges(opened ?? slot, form, parsedEnv.env);
  const running = slot.state === 'running' || slot.state === 'starting' || slot.state === 'restarting';
  const restartsNow = restart && running;
  const ownerChanges = changes.ownerId !== undefined;

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    if (parsedEnv.bad) {
      setError(`"${parsedEnv.bad}" is not a KEY=value line.`);
      return;
    }
    if (Object.keys(changes).length === 0) {
      close();
      return;
    }
    if (ownerChanges && !resetHome) {
      setError('To change the owner, tick "Give the new owner a fresh home" (or keep the owner and cancel).');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const saved = await stores.slots
        .getState()
        .update(hostId, slotId, ownerChanges ? { ...changes, resetHome: true } : changes);
      close();
      stores.ui.getState().notify(`Slot ${saved.name} saved${restartsNow ? ' and restarted' : ''}.`);
    } catch (err) {
      setBusy(false);
      showFailure(stores, hostId, err, close, setError);
    }
  };

  return (
    <Dialog
      title={`Edit slot ${slot.name}`}
      onClose={close}
      footer={
        <FormFooter
          form="edit-slot-form"
          busy={busy}
          label={restartsNow ? 'Save and restart' : 'Save'}
          busyLabel="Saving…"
          onCancel={close}
        />
      }
    >
      <form id="edit-slot-form" className="form" onSubmit={(event) => void submit(event)}>
        <SlotFields hostId={hostId} form={form} change={change} editing />
        {ownerChanges ? (
          <label className="checkbox">
            <input type="checkbox" checked={resetHome} onChange={(e) => setResetHome(e.target.checked)} />
            Give the new owner a fresh home: the slot&apos;s current home, with the previous owner&apos;s Claude login
            and transcripts, is deleted{running ? ', and the slot restarts' : ''}. The work directory stays.
          </label>
        ) : null}
        {restart ? (
          <p className={`slot-edit-notice ${restartsNow ? 'warning' : ''}`} role="status">
            {restartsNow
              ? 'Saving restarts the slot: its program ends (a Claude Code session in it too) and starts again with the new settings. Its screen history stays.'
              : 'The new settings apply when the slot starts next.'}
          </p>
        ) : null}
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
