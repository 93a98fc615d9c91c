import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Where the shared conformance corpora live; STRATA_CONFORMANCE_DIR overrides. */
export const conformanceDir: string = process.env['STRATA_CONFORMANCE_DIR'] ?? path.resolve(repoRoot, '../shared/conformance');

export function corpusPath(...parts: string[]): string {
  return path.join(conformanceDir, ...parts);
}

/** Counts cases of one corpus and reports failures that are not listed as intended differences. */
export class CaseCounter {
  passed = 0;
  failed: { id: string; detail: string }[] = [];
  constructor(
    readonly corpus: string,
    private readonly intended: ReadonlySet<string> = new Set(),
  ) {}
  check(id: string, fn: () => void): void {
    try {
      fn();
      this.passed++;
    } catch (err) {
      this.failed.push({ id, detail: err instanceof Error ? err.message : String(err) });
    }
  }
  unexpected(): { id: string; detail: string }[] {
    return this.failed.filter((f) => !this.intended.has(f.id));
  }
  summary(): string {
    return `${this.corpus}: ${this.passed} passed, ${this.failed.length} failed`;
  }
}
