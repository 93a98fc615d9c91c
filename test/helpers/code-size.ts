/**
 * The size rules of docs/ARCHITECTURE.md: a file in src/ over 400 lines, a function over 80 lines.
 * test/architecture.test.ts holds them; its failure lists every finding.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export const MAX_FILE_LINES = 400;
export const MAX_FUNCTION_LINES = 80;

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

/** Files and functions of `root`/src over the limits, as `path: N lines` or `path:line: function NAME is N lines`. */
export function oversized(root: string): string[] {
  const findings: string[] = [];
  for (const path of sourceFiles(join(root, 'src'))) {
    const text = readFileSync(path, 'utf8');
    const name = relative(root, path);
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_FILE_LINES) findings.push(`${name}: ${lines} lines`);
    const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
        const start = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
        const end = file.getLineAndCharacterOfPosition(node.getEnd()).line;
        if (end - start + 1 > MAX_FUNCTION_LINES) {
          const fname = node.name?.getText(file) ?? '(anonymous)';
          findings.push(`${name}:${start + 1}: function ${fname} is ${end - start + 1} lines`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }
  return findings;
}
