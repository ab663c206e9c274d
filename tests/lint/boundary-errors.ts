import { resolve } from 'node:path';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

const root = resolve(import.meta.dirname, '../..');

/** Lints `code` as if it were the file at `path` (from the repo root), with the project's own config: the boundary messages. */
export async function boundaryErrors(path: string, code: string): Promise<string[]> {
  // The snippets are in no tsconfig project: lint them without the type-aware rules (the boundaries need no types).
  const eslint = new ESLint({
    cwd: root,
    overrideConfig: [
      { languageOptions: { parserOptions: { projectService: false, project: null } } },
      tseslint.configs.disableTypeChecked,
    ],
  });
  const [result] = await eslint.lintText(code, { filePath: resolve(root, path) });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'import-x/no-restricted-paths')
    .map((m) => m.message);
}
