import { StrataError } from '../errors/index.js';

/**
 * An `--output` as buildx takes it: `image` is the local store (and a push with `push: true`), `registry` a
 * push only, `oci` an OCI layout (a tar of one unless `tar: false`), `docker` a `docker load` tarball, `local`
 * and `tar` the root filesystem as a directory or a tarball.
 */
export type BuildOutputSpec =
  | { type: 'image'; push?: boolean; names?: string[]; ociMediaTypes?: boolean }
  | { type: 'registry'; names?: string[]; ociMediaTypes?: boolean }
  | { type: 'oci'; dest: string; tar?: boolean }
  | { type: 'docker'; dest: string }
  | { type: 'local'; dest: string }
  | { type: 'tar'; dest: string };

/**
 * Parses `type=oci,dest=out.tar`, and buildx's shorthands: a bare path means `type=local,dest=PATH`.
 * Checked before the build starts, so a bad spec never leaves a half-built output.
 */
export function parseBuildOutput(text: string): BuildOutputSpec {
  if (!text.includes('=')) {
    if (text === '' || text === '-') throw new StrataError('E_USAGE', `--output "${text}": writing to stdout is not supported; give type=tar,dest=FILE`);
    return { type: 'local', dest: text };
  }
  const attrs = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new StrataError('E_USAGE', `--output "${text}": "${part}" is not KEY=VALUE`);
    attrs.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const type = attrs.get('type') ?? 'local';
  const dest = attrs.get('dest');
  const bool = (key: string, fallback: boolean): boolean => {
    const v = attrs.get(key);
    if (v === undefined) return fallback;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new StrataError('E_USAGE', `--output "${text}": ${key} must be true or false`);
  };
  const names = attrs
    .get('name')
    ?.split(/[,\s]+/)
    .filter(Boolean);
  const needDest = (): string => {
    if (!dest) throw new StrataError('E_USAGE', `--output type=${type} needs dest=PATH`);
    return dest;
  };
  switch (type) {
    case 'image':
      return { type: 'image', push: bool('push', false), ...(names ? { names } : {}), ...(bool('oci-mediatypes', true) ? {} : { ociMediaTypes: false }) };
    case 'registry':
      return { type: 'registry', ...(names ? { names } : {}), ...(bool('oci-mediatypes', true) ? {} : { ociMediaTypes: false }) };
    case 'oci':
      return { type: 'oci', dest: needDest(), tar: bool('tar', true) };
    case 'docker':
      return { type: 'docker', dest: needDest() };
    case 'local':
      return { type: 'local', dest: needDest() };
    case 'tar':
      return { type: 'tar', dest: needDest() };
    default:
      throw new StrataError('E_USAGE', `--output "${text}": unknown type "${type}"`, { hint: 'types: image, registry, oci, docker, local, tar' });
  }
}
