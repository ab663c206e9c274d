import type { AwsProgress, InstanceAction } from '../../../../shared/ipc/contract';
import { progressSteps, type InstanceOperation } from '../../stores/cloud';

const MARKS = { done: '✓', current: '●', todo: '○', failed: '✕' } as const;

/** pending → running → status checks → ready, as far as the instance got, with main's latest word under it. */
export function ProgressSteps({
  kind,
  events,
  state,
}: {
  kind: InstanceAction | 'launch';
  events: AwsProgress[];
  state: InstanceOperation['state'];
}) {
  // A reboot has no steps AWS reports (the instance stays running): only main's word that it was requested.
  const steps = kind === 'reboot' ? [] : progressSteps(kind, events, state);
  const latest = events[events.length - 1];
  return (
    <div className="cloud-progress" data-testid="instance-progress">
      {steps.length === 0 ? null : (
        <ol className="cloud-steps" aria-label="Progress">
          {steps.map((step) => (
            <li key={step.phase} className={`cloud-step step-${step.state}`} data-state={step.state}>
              <span className="cloud-step-mark" aria-hidden="true">
                {MARKS[step.state]}
              </span>
              {step.label}
            </li>
          ))}
        </ol>
      )}
      {/* A failure is shown by the caller, with what to do: not twice. */}
      {latest && state !== 'failed' ? (
        <span className="cloud-progress-message" role="status">
          {latest.message}
        </span>
      ) : null}
    </div>
  );
}
