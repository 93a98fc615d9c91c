import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, digestOf } from '../digest/index.js';
import { writeFileAtomic } from '../store/index.js';

/** What a commit's directory is: its git tree id and the commit's time. Both are fixed by the commit id. */
export interface GitTreeRecord {
  commit: string;
  subdir: string;
  tree: string;
  commitTime: number;
}

/**
 * Tree ids by commit and subdirectory, learned from earlier checkouts, so a rebuild whose ref still names
 * the same commit (one `git ls-remote`) can key its step without fetching anything, as BuildKit keys a git
 * source by its commit. A commit id names its content, so these records never go stale.
 */
export class GitTreeCache {
  constructor(private readonly dir: string) {}

  private path(commit: string, subdir: string): string {
    return join(this.dir, `${digestHex(digestOf(`${commit}\0${subdir}`))}.json`);
  }

  async get(commit: string, subdir: string): Promise<GitTreeRecord | undefined> {
    try {
      const parsed = JSON.parse(await readFile(this.path(commit, subdir), 'utf8')) as Partial<GitTreeRecord>;
      if (parsed.commit !== commit || parsed.subdir !== subdir || typeof parsed.tree !== 'string' || typeof parsed.commitTime !== 'number') return undefined;
      return { commit, subdir, tree: parsed.tree, commitTime: parsed.commitTime };
    } catch {
      // Not learned yet, or damaged: the caller fetches.
      return undefined;
    }
  }

  async put(record: GitTreeRecord): Promise<void> {
    await writeFileAtomic(this.path(record.commit, record.subdir), JSON.stringify(record));
  }
}
