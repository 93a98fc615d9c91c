import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { StrataError, errnoCode, ioError, isStrataError } from '../errors/index.js';
import { DockerignoreMatcher, dockerignoreCandidates, readDockerignorePatterns, selectDockerignore } from '../dockerfile/index.js';
import { resolveInRoot } from './secure-join.js';
import type { SourceRoot } from './types.js';
import { ContextView } from './view.js';

export interface OpenBuildContextOptions {
  /**
   * The Dockerfile's path, absolute or relative to the context directory. `<Dockerfile>.dockerignore`
   * beside it wins over the context's `.dockerignore` (BuildKit). Leave out for a Dockerfile read from stdin.
   */
  dockerfilePath?: string | undefined;
  /**
   * Accepted for callers that track it; the Dockerfile-specific ignore file is looked up beside the
   * Dockerfile wherever it is, as buildx does.
   */
  dockerfileInContext?: boolean | undefined;
}

async function realDirectory(dir: string, what: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (cause) {
    if (errnoCode(cause) === 'ENOENT' || errnoCode(cause) === 'ENOTDIR') {
      throw new StrataError('E_NOT_FOUND', `${what} ${dir} does not exist`, {
        cause,
        hint: 'give an existing directory',
      });
    }
    throw ioError(`open ${what}`, dir, cause);
  }
  const st = await stat(real).catch((cause: unknown) => {
    throw ioError(`open ${what}`, dir, cause);
  });
  if (!st.isDirectory()) {
    throw new StrataError('E_USAGE', `${what} ${dir} is not a directory`, {
      hint: 'the build context must be a directory (a tarball or URL context is not supported here)',
    });
  }
  return real;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    const code = errnoCode(cause);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw ioError('read', path, cause);
  }
}

/** The context's own .dockerignore, read through the root so a symlinked one cannot point outside. */
async function readContextIgnore(dir: string): Promise<string | undefined> {
  const view = new ContextView({ dir, description: 'build context' });
  const found = await resolveInRoot(view, '.dockerignore', true);
  if (found.stats === undefined || !found.stats.isFile()) return undefined;
  return readOptional(view.abs(found.rel));
}

function compileIgnore(text: string, file: string): DockerignoreMatcher {
  try {
    const matcher = new DockerignoreMatcher(readDockerignorePatterns(text));
    // Patterns compile lazily and only when reached; probing each alone surfaces a bad one now, naming the
    // file, rather than at some later COPY.
    for (const p of matcher.patternList) new DockerignoreMatcher([p.startsWith('!') ? p.slice(1) : p]).ignores('probe');
    return matcher;
  } catch (cause) {
    if (isStrataError(cause, 'E_DOCKERIGNORE_PATTERN')) {
      throw new StrataError('E_DOCKERIGNORE_PATTERN', `${file}: ${cause.message}`, { cause, hint: cause.hint });
    }
    throw cause;
  }
}

/** Opens a local build context: its real path and the ignore file BuildKit would apply. */
export async function openBuildContext(contextDir: string, options: OpenBuildContextOptions = {}): Promise<SourceRoot> {
  const dir = await realDirectory(contextDir, 'build context');
  let specificPath: string | undefined;
  let specific: string | undefined;
  if (options.dockerfilePath !== undefined && options.dockerfilePath !== '-') {
    const dockerfile = isAbsolute(options.dockerfilePath) ? options.dockerfilePath : resolve(dir, options.dockerfilePath);
    specificPath = dockerignoreCandidates(dockerfile).dockerfileSpecific;
    specific = await readOptional(specificPath);
  }
  const contextText = await readContextIgnore(dir);
  const chosen = selectDockerignore(specific, contextText);
  if (chosen.source === 'none') return { dir, description: 'build context' };
  const file = chosen.source === 'dockerfile' ? (specificPath as string) : resolve(dir, '.dockerignore');
  return { dir, description: 'build context', matcher: compileIgnore(chosen.text, file), ignoreFile: file };
}

/**
 * A named build context directory (`--build-context NAME=DIR`, or a git or tar context made local): its own
 * `.dockerignore` applies, as BuildKit applies it to a named local context; a Dockerfile-specific
 * `<Dockerfile>.dockerignore` belongs to the main context only.
 */
export async function openNamedContextRoot(contextDir: string, description: string): Promise<SourceRoot> {
  const dir = await realDirectory(contextDir, description);
  const text = await readContextIgnore(dir);
  if (text === undefined) return { dir, description };
  const file = resolve(dir, '.dockerignore');
  return { dir, description, matcher: compileIgnore(text, file), ignoreFile: file };
}

/** A root for an extracted image or stage filesystem (`COPY --from`): no ignore file applies. */
export async function sourceRootForDirectory(dir: string, description: string): Promise<SourceRoot> {
  return { dir: await realDirectory(dir, description), description };
}
