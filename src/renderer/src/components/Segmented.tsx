/** A row of radio buttons drawn as one segmented control (the `segmented` style): one choice of a few. */
export function Segmented<T extends string>({
  label,
  name,
  options,
  value,
  onChange,
}: {
  /** The group's accessible name. */
  label: string;
  /** The radio group's form name (unique within the page). */
  name: string;
  options: ReadonlyArray<{ value: T; label: string }>;
  value: T;
  onChange: (value: T) => void;
}): React.JSX.Element {
  return (
    <fieldset className="segmented" aria-label={label}>
      {options.map((option) => (
        <label key={option.value} className={value === option.value ? 'checked' : ''}>
          <input
            type="radio"
            name={name}
            value={option.value}
            checked={value === option.value}
            onChange={() => onChange(option.value)}
          />
          {option.label}
        </label>
      ))}
    </fieldset>
  );
}
