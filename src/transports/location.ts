import { StrataError } from '../errors/index.js';

/**
 * Where an image lives, in skopeo's transport syntax:
 * `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:REF]`, `docker://REF`, or a bare
 * name for the local store.
 */
export type ImageLocation =
  | { transport: 'local'; name: string }
  | { transport: 'oci'; dir: string; tag?: string }
  | { transport: 'oci-archive'; file: string; tag?: string }
  | { transport: 'docker-archive'; file: string; ref?: string }
  | { transport: 'docker'; ref: string };

const PREFIXES = ['oci:', 'oci-archive:', 'docker-archive:', 'docker://'] as const;

export function parseImageLocation(text: string): ImageLocation {
  if (text === '') throw new StrataError('E_TRANSPORT_INVALID', 'empty image name');
  if (text.startsWith('docker://')) {
    const ref = text.slice('docker://'.length);
    if (!ref) throw new StrataError('E_TRANSPORT_INVALID', `"${text}" names no image after docker://`);
    return { transport: 'docker', ref };
  }
  for (const prefix of PREFIXES) {
    if (!text.startsWith(prefix) || prefix === 'docker://') continue;
    const rest = text.slice(prefix.length);
    // The path ends at the first ':' as in skopeo; a name after it may itself contain ':' (a tag).
    const colon = rest.indexOf(':');
    const path = colon < 0 ? rest : rest.slice(0, colon);
    const name = colon < 0 ? undefined : rest.slice(colon + 1);
    if (!path) throw new StrataError('E_TRANSPORT_INVALID', `"${text}" names no path after ${prefix}`);
    if (name === '') throw new StrataError('E_TRANSPORT_INVALID', `"${text}" has an empty name after the path`);
    if (prefix === 'oci:') return name === undefined ? { transport: 'oci', dir: path } : { transport: 'oci', dir: path, tag: name };
    if (prefix === 'oci-archive:') return name === undefined ? { transport: 'oci-archive', file: path } : { transport: 'oci-archive', file: path, tag: name };
    return name === undefined ? { transport: 'docker-archive', file: path } : { transport: 'docker-archive', file: path, ref: name };
  }
  const known = /^([a-z][a-z0-9-]*):(?!\d)/.exec(text);
  if (known && ['dir', 'containers-storage', 'docker-daemon'].includes(known[1]!)) {
    throw new StrataError('E_TRANSPORT_INVALID', `transport "${known[1]}:" is not supported`, {
      hint: 'use oci:, oci-archive:, docker-archive:, docker:// or a local image name',
    });
  }
  return { transport: 'local', name: text };
}

export function formatImageLocation(location: ImageLocation): string {
  switch (location.transport) {
    case 'local':
      return location.name;
    case 'oci':
      return `oci:${location.dir}${location.tag ? `:${location.tag}` : ''}`;
    case 'oci-archive':
      return `oci-archive:${location.file}${location.tag ? `:${location.tag}` : ''}`;
    case 'docker-archive':
      return `docker-archive:${location.file}${location.ref ? `:${location.ref}` : ''}`;
    case 'docker':
      return `docker://${location.ref}`;
  }
}
