import { StrataError } from '../errors/index.js';
import { cleanDockerignorePath } from '../dockerfile/index.js';
import { lstatOrMissing, makeEntry } from './entry.js';
import { compileExcludes } from './excludes.js';
import { compileComponentPattern, hasWildcard, unescapeLiteral } from './glob.js';
import { compareNames } from './order.js';
import { resolveInRoot } from './secure-join.js';
import type { ResolvedSource, SourceMatch, SourceRoot } from './types.js';
import { ContextView, readDirents } from './view.js';

export interface ResolveCopySourcesOptions {
  /**
   * `COPY --exclude` patterns. A wildcard match whose path (relative to the root) they match is dropped;
   * a literal source is never dropped (BuildKit does not test the copy's own top level). Pass the same
   * patterns to listSourceTree for the contents of a directory source.
   */
  excludes?: readonly string[] | undefined;
  /** Follow the matched path when it is a symlink (inside the root). Default true, as COPY and ADD do. */
  followSymlinks?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** `../x` ⇒ `x`, `/abs/y` ⇒ `abs/y`, `./x/` ⇒ `x`, `.` ⇒ '': the source cleaned as if joined onto `/`. */
export function scopeSourcePath(source: string): string {
  return cleanDockerignorePath('/' + source).slice(1);
}

/**
 * Resolves COPY/ADD sources against a root with docker/BuildKit semantics: scoped to the root, wildcards
 * matched per component against the tree (only as deep as the pattern goes), ignored paths absent,
 * the top-level match followed when it is a symlink, and every symlink interpreted inside the root.
 * A literal source that does not exist is E_NOT_FOUND; a wildcard may match nothing.
 */
export async function resolveCopySources(root: SourceRoot, sources: readonly string[], options: ResolveCopySourcesOptions = {}): Promise<ResolvedSource[]> {
  const view = new ContextView(root);
  const excludes = compileExcludes(options.excludes);
  const follow = options.followSymlinks ?? true;
  const out: ResolvedSource[] = [];
  for (const source of sources) {
    if (options.signal?.aborted === true) throw new StrataError('E_ABORTED', `resolving ${JSON.stringify(source)} was aborted`);
    const scoped = scopeSourcePath(source);
    const parts = scoped === '' ? [] : scoped.split('/');
    const wildcard = parts.some(hasWildcard);
    if (!wildcard) {
      const logical = parts.map(unescapeLiteral).join('/');
      const match = await matchAt(view, logical, follow);
      if (match === undefined) throw await notFound(root, source, logical);
      out.push({ source, wildcard, matches: [match] });
      continue;
    }
    const candidates: string[] = [];
    await expand(view, parts, candidates);
    const matches: SourceMatch[] = [];
    for (const logical of candidates) {
      if (excludes?.ignores(logical) === true) continue;
      const match = await matchAt(view, logical, follow);
      if (match === undefined) {
        throw new StrataError('E_NOT_FOUND', `${JSON.stringify(source)}: ${logical} is a symlink whose target is not in the ${root.description}`, {
          hint: 'symlinks are resolved inside the context; a link pointing outside it cannot be copied',
        });
      }
      matches.push(match);
    }
    out.push({ source, wildcard, matches });
  }
  return out;
}

async function matchAt(view: ContextView, logical: string, follow: boolean): Promise<SourceMatch | undefined> {
  const found = await resolveInRoot(view, logical, follow);
  if (found.stats === undefined) return undefined;
  const entry = await makeEntry('', view.abs(found.rel), found.stats);
  return { relPath: found.rel, matchedPath: logical, isDir: entry.type === 'dir', entry };
}

/**
 * Walks the pattern as BuildKit does: the literal prefix before the first wildcard is resolved inside the
 * root (symlinks followed), then the rest is matched component by component against the real tree below it
 * (filepath.Walk: symlinked directories are not descended into), so a trailing literal must exist.
 */
async function expand(view: ContextView, parts: readonly string[], out: string[]): Promise<void> {
  const first = parts.findIndex(hasWildcard);
  const prefix = parts.slice(0, first).map(unescapeLiteral).join('/');
  const dir = await resolveInRoot(view, prefix, true);
  if (dir.stats === undefined || !dir.stats.isDirectory()) return;
  await descend(view, dir.rel, parts.slice(first), out);
}

async function descend(view: ContextView, dirRel: string, rest: readonly string[], out: string[]): Promise<void> {
  const [head, ...tail] = rest;
  if (head === undefined) return;
  const join = (name: string): string => (dirRel === '' ? name : `${dirRel}/${name}`);
  let children: Array<{ name: string; isDir: boolean }>;
  if (hasWildcard(head)) {
    const pattern = compileComponentPattern(head);
    children = (await readDirents(view.abs(dirRel)))
      .filter((d) => pattern.test(d.name))
      .sort((a, b) => compareNames(a.name, b.name))
      .map((d) => ({ name: d.name, isDir: d.isDirectory() }));
  } else {
    const name = unescapeLiteral(head);
    const st = await lstatOrMissing(view.abs(join(name)));
    children = st === undefined ? [] : [{ name, isDir: st.isDirectory() }];
  }
  for (const child of children) {
    const rel = join(child.name);
    if (!(await view.visible(rel, child.isDir))) continue;
    if (tail.length === 0) out.push(rel);
    else if (child.isDir) await descend(view, rel, tail, out);
  }
}

async function notFound(root: SourceRoot, source: string, logical: string): Promise<StrataError> {
  let hint = `COPY and ADD sources are relative to the ${root.description} root; check the path`;
  if (root.matcher !== undefined) {
    // Would it be there without the ignore file? Resolved the same safe way, only to choose the hint.
    const bare = await resolveInRoot(new ContextView({ dir: root.dir, description: root.description }), logical, true);
    if (bare.stats !== undefined) {
      hint = `it is excluded by ${root.ignoreFile ?? '.dockerignore'}; remove the pattern that matches it or add a "!" exception`;
    }
  }
  return new StrataError('E_NOT_FOUND', `${JSON.stringify(source)}: not found in the ${root.description}`, { hint });
}
