import type { Stats } from 'node:fs';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { StrataError, errnoCode, ioError, isStrataError } from '../errors/index.js';
import { decodeName, displayName, fsPath, quotedName as quoted } from '../fsname/index.js';
import type { PathLookup } from './secure-join.js';

/**
 * A directory that layers are unpacked into, reached by root-relative paths. Names are strata's (see
 * fsname): a name that is not UTF-8 reaches every fs call as its exact bytes (`at`), and names listed or
 * read back (readdir, readlink, realpath) are decoded the same way, so they compare with the layer's.
 */
export class RootDir {
  /** Names the layer being applied in errors. */
  protected what = 'layer';

  constructor(protected readonly root: string) {}

  /** The absolute path of `rel` as a string (for messages and joins). */
  protected abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** The absolute path of `rel` as an fs call needs it. */
  protected at(rel: string): string | Buffer {
    return fsPath(this.abs(rel));
  }

  protected async lstat(rel: string): Promise<Stats | undefined> {
    try {
      return fs.lstatSync(this.at(rel));
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw ioError('inspect', displayName(this.abs(rel)), error);
    }
  }

  protected async readdir(rel: string): Promise<string[]> {
    return this.io('list', rel, () => fs.readdirSync(this.at(rel), { encoding: 'buffer' }).map(decodeName));
  }

  protected async lookup(rel: string): Promise<PathLookup> {
    const stat = await this.lstat(rel);
    if (stat === undefined) return { kind: 'missing' };
    if (stat.isDirectory()) return { kind: 'dir' };
    if (stat.isSymbolicLink())
      return { kind: 'symlink', target: await this.io('read link', rel, () => decodeName(fs.readlinkSync(this.at(rel), { encoding: 'buffer' }))) };
    return { kind: 'other' };
  }

  /** Belt and braces: the resolved directory really is where the resolution says, inside the root. */
  protected async assertInside(rel: string): Promise<void> {
    const expected = this.abs(rel);
    const real = await this.io('resolve', rel, () => decodeName(fs.realpathSync.native(fsPath(expected), { encoding: 'buffer' })));
    if (real !== expected) throw this.unsafe(rel, `resolves to ${displayName(real)}, outside ${this.root}`);
  }

  protected async io<T>(action: string, rel: string, work: () => T | Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw this.failure(action, rel, error);
    }
  }

  /** `io` for a synchronous call: no promise per system call on the paths taken once per entry. */
  protected ioSync<T>(action: string, rel: string, work: () => T): T {
    try {
      return work();
    } catch (error) {
      throw this.failure(action, rel, error);
    }
  }

  /** A failed file system call on `rel` as the error the extractor reports (a StrataError passes through). */
  protected failure(action: string, rel: string, error: unknown): StrataError {
    if (isStrataError(error)) return error;
    const wrapped = ioError(action, displayName(this.abs(rel)), error);
    return new StrataError(wrapped.code, `${this.what}: ${wrapped.message}`, {
      cause: error,
      hint: 'the root directory must be private to this extraction; unprivileged extraction cannot set owners or make devices',
    });
  }

  protected unresolvable(entryPath: string, path: string, reason: 'loop' | 'notdir', at: string): StrataError {
    if (reason === 'loop') return this.unsafe(entryPath, `goes through ${quoted(path)}, whose symlinks loop at ${displayName(at)}`);
    return this.invalid(
      entryPath,
      `goes through ${quoted(at)}, which is not a directory`,
      'the layer writes below a path that a lower layer made a file; the image is malformed',
    );
  }

  protected unsafe(entryPath: string, why: string): StrataError {
    return new StrataError('E_LAYER_UNSAFE', `${this.what}: entry ${quoted(entryPath)} ${why}`, {
      hint: 'the layer could write outside the directory it is unpacked into; it was refused',
    });
  }

  protected invalid(entryPath: string, why: string, hint = 'the layer is malformed; rebuild it'): StrataError {
    return new StrataError('E_LAYER_INVALID', `${this.what}: entry ${quoted(entryPath)} ${why}`, { hint });
  }
}
