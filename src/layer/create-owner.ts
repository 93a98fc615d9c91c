import type { Stats } from 'node:fs';

/**
 * Who owns what the extractor creates before any chown, so that an entry that would be chowned to exactly that
 * is not chowned at all. The plain rule: this process's effective uid, and its effective gid, or the directory's
 * group when the directory is setgid. Whether the file system follows it (root squashed to nobody on NFS or an
 * id-mapped mount would not) is checked on the first file made (`check`); until then, and when it does not,
 * every entry is chowned.
 */
export class CreateOwner {
  private state: 'unchecked' | 'plain' | 'other';
  private readonly uid: number;
  private readonly gid: number;

  constructor(keepOwnership: boolean) {
    this.uid = process.geteuid?.() ?? -1;
    this.gid = process.getegid?.() ?? -1;
    this.state = keepOwnership && this.uid >= 0 && this.gid >= 0 ? 'unchecked' : 'other';
  }

  /** The group a file made in `dir` gets by the plain rule; undefined when the rule is known not to hold. */
  groupIn(dir: Stats | undefined): number | undefined {
    if (this.state === 'other' || dir === undefined) return undefined;
    return (dir.mode & 0o2000) !== 0 ? dir.gid : this.gid;
  }

  /** Whether the rule is still to be checked (on the next file made). */
  get unchecked(): boolean {
    return this.state === 'unchecked';
  }

  /** Checks the rule against a file just made in a directory whose files get `group` by it (see groupIn). */
  check(made: Stats, group: number | undefined): void {
    this.state = group !== undefined && made.uid === this.uid && made.gid === group ? 'plain' : 'other';
  }

  /** Whether a file made in a directory whose files get `group` already belongs to uid:gid. */
  gives(uid: number, gid: number, group: number | undefined): boolean {
    return this.state === 'plain' && group !== undefined && uid === this.uid && gid === group;
  }
}
