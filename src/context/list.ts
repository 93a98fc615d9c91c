import { setImmediate } from 'node:timers/promises';
import type { DockerignoreMatchInfo, DockerignoreMatcher } from '../dockerfile/index.js';
import { StrataError } from '../errors/index.js';
import { lstatOrMissing, makeEntry } from './entry.js';
import { compileExcludes } from './excludes.js';
import { sortSiblingNames } from './order.js';
import { resolveInRoot } from './secure-join.js';
import type { ContextEntry, SourceRoot } from './types.js';
import { ContextView, readNames } from './view.js';

export interface ListSourceTreeOptions {
  /**
   * `COPY --exclude` patterns, matched (as BuildKit's copier does) against paths relative to the listed
   * directory: `*.txt` drops `dir/a.txt` from `COPY dir /x`, `**\/*.txt` drops them at any depth.
   */
  excludes?: readonly string[] | undefined;
  signal?: AbortSignal | undefined;
}

/** Checks that `relPath` is a clean path inside the root with no symlink component, as resolveCopySources returns. */
async function checkedPath(view: ContextView, relPath: string): Promise<string> {
  const clean = relPath.split('/').filter((p) => p !== '' && p !== '.');
  if (relPath.startsWith('/') || clean.includes('..')) {
    throw new StrataError('E_CONTEXT_ESCAPE', `source path ${JSON.stringify(relPath)} is not inside the ${view.root.description}`, {
      hint: 'pass a relPath from resolveCopySources',
    });
  }
  const rel = clean.join('/');
  const found = await resolveInRoot(view, rel, false);
  if (found.rel !== rel) {
    throw new StrataError('E_CONTEXT_ESCAPE', `source path ${JSON.stringify(relPath)} goes through a symlink in the ${view.root.description}`, {
      hint: 'pass the resolved relPath from resolveCopySources',
    });
  }
  if (found.stats === undefined) {
    throw new StrataError('E_NOT_FOUND', `${JSON.stringify(relPath)}: not found in the ${view.root.description}`);
  }
  return rel;
}

/** The entry for one source path (not followed if it is a symlink), relPath ''. */
export async function statSource(root: SourceRoot, relPath: string): Promise<ContextEntry> {
  const view = new ContextView(root);
  const rel = await checkedPath(view, relPath);
  const st = await lstatOrMissing(view.abs(rel));
  if (st === undefined) throw new StrataError('E_NOT_FOUND', `${JSON.stringify(relPath)}: not found in the ${root.description}`);
  return makeEntry('', view.abs(rel), st);
}

/**
 * Entries lstat'ed between two turns of the event loop. The walk's calls are blocking; giving the loop
 * a turn now and then lets what runs beside it (a base image's registry round trips) progress meanwhile.
 */
const ENTRIES_PER_TURN = 256;

interface Walk {
  view: ContextView;
  ignore: DockerignoreMatcher | undefined;
  exclude: DockerignoreMatcher | undefined;
  out: ContextEntry[];
  signal: AbortSignal | undefined;
  untilTurn: number;
}

interface Frame {
  /** Relative to the root. */
  rel: string;
  /** Relative to the listed directory. */
  sub: string;
  ignoreInfo: DockerignoreMatchInfo | undefined;
  excludeInfo: DockerignoreMatchInfo | undefined;
}

/**
 * Every entry under a directory source, sorted by path, relPath relative to it (the directory itself is
 * not included). Symlinks inside are entries, never followed. Paths ignored by .dockerignore or matched by
 * `excludes` are left out; when `!` exceptions exist, an excluded directory is kept only to hold the
 * re-included paths beneath it, as BuildKit's walker and copier do. A file source lists as [].
 */
export async function listSourceTree(root: SourceRoot, relPath: string, options: ListSourceTreeOptions = {}): Promise<ContextEntry[]> {
  const view = new ContextView(root);
  const rel = await checkedPath(view, relPath);
  const st = await lstatOrMissing(view.abs(rel));
  if (st === undefined || !st.isDirectory()) return [];
  const w: Walk = { view, ignore: root.matcher, exclude: compileExcludes(options.excludes), out: [], signal: options.signal, untilTurn: ENTRIES_PER_TURN };
  const ignoreInfo = w.ignore !== undefined && rel !== '' ? w.ignore.ignoresWithParent(rel).info : undefined;
  await walk(w, { rel, sub: '', ignoreInfo, excludeInfo: undefined });
  return w.out;
}

/**
 * Lists one directory into `out`; returns whether anything was kept (so an excluded parent can be kept).
 * Names are visited in sibling order and each directory goes right before its contents, so `out` comes
 * out sorted by path. This runs once per file of the context on every build, cached or not: it does no
 * more than a readdir and an lstat per entry.
 */
async function walk(w: Walk, frame: Frame): Promise<boolean> {
  const { view, ignore, exclude, out } = w;
  if (w.signal?.aborted === true) throw new StrataError('E_ABORTED', `listing ${frame.rel || '.'} in the ${view.root.description} was aborted`);
  let kept = false;
  const dir = view.abs(frame.rel);
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  for (const name of sortSiblingNames(readNames(dir))) {
    const rel = frame.rel === '' ? name : `${frame.rel}/${name}`;
    const sub = frame.sub === '' ? name : `${frame.sub}/${name}`;
    const ig = ignore?.ignoresWithParent(rel, frame.ignoreInfo);
    const ex = exclude?.ignoresWithParent(sub, frame.excludeInfo);
    const dropped = ig?.ignored === true || ex?.ignored === true;
    // Without exceptions nothing beneath a dropped path can come back, so it is not even lstat'ed.
    const mayReturn = (ig?.ignored !== true || ignore?.hasExclusions === true) && (ex?.ignored !== true || exclude?.hasExclusions === true);
    if (dropped && !mayReturn) continue;
    if (--w.untilTurn === 0) {
      w.untilTurn = ENTRIES_PER_TURN;
      await setImmediate();
    }
    const st = lstatOrMissing(prefix + name);
    if (st === undefined) continue; // removed while listing
    if (dropped && !st.isDirectory()) continue;
    const entry = makeEntry(sub, prefix + name, st);
    out.push(entry);
    if (entry.type === 'dir') {
      const at = out.length - 1;
      const inner = await walk(w, { rel, sub, ignoreInfo: ig?.info, excludeInfo: ex?.info });
      // A dropped directory stays only to hold re-included paths.
      if (dropped && !inner) out.splice(at, 1);
      else kept = true;
    } else {
      kept = true;
    }
  }
  return kept;
}
