import { ReferenceParseError } from './errors.js';
import { DEFAULT_DOMAIN } from './grammar.js';
import { familiarString, parseNormalizedNamed, referenceName, referenceString, withReferenceTag, type ImageReference } from './parse.js';

/**
 * Parses what a user types (`alpine`, `ghcr.io/o/app:1`, `localhost:5000/x@sha256:…`) into a
 * normalized reference. Tag and digest are both kept; see `referenceTarget` for what to fetch.
 */
export function parseImageReference(text: string): ImageReference {
  const trimmed = text.trim();
  if (trimmed === '') throw new ReferenceParseError('name-empty', text, 'the image reference is empty');
  return parseNormalizedNamed(trimmed);
}

/** The fully qualified form: `docker.io/library/alpine:3.20`. */
export function formatReference(ref: ImageReference): string {
  return referenceString(ref);
}

/** The short form docker prints: `alpine:3.20`. */
export function familiarReference(ref: ImageReference): string {
  return familiarString(ref);
}

/** `docker.io/library/alpine`, without tag or digest. */
export function repositoryName(ref: Pick<ImageReference, 'domain' | 'path'>): string {
  return referenceName(ref);
}

/** Replaces the tag and drops the digest: the reference a pushed or tagged image gets. */
export function referenceWithTag(ref: ImageReference, tag: string): ImageReference {
  return withReferenceTag({ domain: ref.domain, path: ref.path }, tag);
}

/** What to ask the registry for: the digest when there is one, else the tag, else `latest`. */
export function referenceTarget(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** Docker Hub's API does not live at `docker.io`. */
export function registryApiHost(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === 'index.docker.io' ? 'registry-1.docker.io' : domain;
}

/** Splits `host[:port]`, including `[v6]:port`. The host keeps no brackets. */
export function splitRegistryHost(domain: string): { host: string; port: number | undefined } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(domain);
  if (v6) return { host: v6[1] ?? '', port: v6[2] === undefined ? undefined : Number(v6[2]) };
  const colon = domain.lastIndexOf(':');
  if (colon > 0 && domain.indexOf(':') === colon && /^\d+$/.test(domain.slice(colon + 1))) {
    return { host: domain.slice(0, colon), port: Number(domain.slice(colon + 1)) };
  }
  return { host: domain, port: undefined };
}

/**
 * Registries docker talks plain HTTP to without being told: localhost, 127.0.0.0/8 and ::1, on
 * any port.
 */
export function isLoopbackRegistry(domain: string): boolean {
  const { host } = splitRegistryHost(domain.toLowerCase());
  if (host === 'localhost' || host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4 === null) return false;
  return v4.slice(1).every((octet) => Number(octet) <= 255);
}

/** Validates a registry host as typed on the command line (`strata login HOST`). */
export function parseRegistryHost(text: string): string {
  const trimmed = text
    .trim()
    .replace(/^https?:\/\//, '')
    .replace(/\/+$/, '');
  const probe = parseNormalizedNamed(`${trimmed}/probe`);
  if (probe.domain !== trimmed && !(trimmed === 'index.docker.io' && probe.domain === DEFAULT_DOMAIN)) {
    throw new ReferenceParseError('invalid-format', text, 'not a registry host (expected host[:port], like ghcr.io or localhost:5000)');
  }
  return probe.domain;
}
