import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface SecretSighting {
  secret: string;
  /** `/proc/<pid>/environ` or `/proc/<pid>/cmdline`. */
  where: string;
  /** The uid the process runs as. */
  uid: number;
}

/**
 * Every place a process other than this test shows one of `secrets` in its environment or command line (what any
 * process of the same account, or anyone for command lines, can read).
 */
export function secretsInProcesses(secrets: Record<string, string>): SecretSighting[] {
  const found: SecretSighting[] = [];
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)) {
    let uid: number;
    try {
      uid = statSync(`/proc/${pid}`).uid;
    } catch {
      continue; // ended while we looked
    }
    for (const what of ['environ', 'cmdline']) {
      let text: string;
      try {
        text = readFileSync(`/proc/${pid}/${what}`, 'latin1');
      } catch {
        continue;
      }
      for (const [name, secret] of Object.entries(secrets)) {
        if (text.includes(secret)) found.push({ secret: name, where: `/proc/${pid}/${what}`, uid });
      }
    }
  }
  return found;
}

/** Every regular file under `dir` (links not followed; an unreadable folder counts as empty). */
export function filesUnder(dir: string): string[] {
  const found: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(path));
    else if (entry.isFile()) found.push(path);
  }
  return found;
}
