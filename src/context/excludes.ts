import { StrataError, isStrataError } from '../errors/index.js';
import { DockerignoreMatcher, cleanDockerignorePath } from '../dockerfile/index.js';

/**
 * `COPY --exclude` patterns: .dockerignore syntax (`*`, `**`, `!`), a leading `/` meaning the same as none.
 * Undefined when there are none. A bad pattern is an error naming `--exclude`.
 */
export function compileExcludes(excludes: readonly string[] | undefined): DockerignoreMatcher | undefined {
  if (excludes === undefined || excludes.length === 0) return undefined;
  const patterns: string[] = [];
  for (const raw of excludes) {
    let p = raw.trim();
    const invert = p.startsWith('!');
    if (invert) p = p.slice(1).trim();
    if (p === '') continue;
    p = cleanDockerignorePath(p);
    if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    patterns.push(invert ? '!' + p : p);
  }
  if (patterns.length === 0) return undefined;
  try {
    const matcher = new DockerignoreMatcher(patterns);
    for (const p of patterns) new DockerignoreMatcher([p.startsWith('!') ? p.slice(1) : p]).ignores('probe');
    return matcher;
  } catch (cause) {
    if (isStrataError(cause, 'E_DOCKERIGNORE_PATTERN')) {
      throw new StrataError('E_USAGE', cause.message.replace('.dockerignore pattern', '--exclude pattern'), { cause, hint: cause.hint });
    }
    throw cause;
  }
}
