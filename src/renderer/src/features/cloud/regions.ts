/** The commercial AWS regions offered when choosing an account's regions (an account may keep others it has). */
export const AWS_REGIONS: Array<[id: string, place: string]> = [
  ['us-east-1', 'N. Virginia'],
  ['us-east-2', 'Ohio'],
  ['us-west-1', 'N. California'],
  ['us-west-2', 'Oregon'],
  ['ca-central-1', 'Canada'],
  ['sa-east-1', 'São Paulo'],
  ['eu-west-1', 'Ireland'],
  ['eu-west-2', 'London'],
  ['eu-west-3', 'Paris'],
  ['eu-central-1', 'Frankfurt'],
  ['eu-central-2', 'Zurich'],
  ['eu-north-1', 'Stockholm'],
  ['eu-south-1', 'Milan'],
  ['eu-south-2', 'Spain'],
  ['ap-south-1', 'Mumbai'],
  ['ap-south-2', 'Hyderabad'],
  ['ap-northeast-1', 'Tokyo'],
  ['ap-northeast-2', 'Seoul'],
  ['ap-northeast-3', 'Osaka'],
  ['ap-southeast-1', 'Singapore'],
  ['ap-southeast-2', 'Sydney'],
  ['ap-southeast-3', 'Jakarta'],
  ['ap-east-1', 'Hong Kong'],
  ['me-south-1', 'Bahrain'],
  ['me-central-1', 'UAE'],
  ['il-central-1', 'Tel Aviv'],
  ['af-south-1', 'Cape Town'],
];

/** The choices for an account: the known regions, then any other region it already has. */
export function regionChoices(current: string[]): Array<[string, string]> {
  const known = new Set(AWS_REGIONS.map(([id]) => id));
  return [...AWS_REGIONS, ...current.filter((id) => !known.has(id)).map((id): [string, string] => [id, ''])];
}
