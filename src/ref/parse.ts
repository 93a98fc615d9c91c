import type { Digest } from '../digest/index.js';
import { ReferenceParseError } from './errors.js';
import {
  ANCHORED_DIGEST_RE,
  ANCHORED_IDENTIFIER_RE,
  ANCHORED_NAME_RE,
  ANCHORED_TAG_RE,
  DEFAULT_DOMAIN,
  LEGACY_DEFAULT_DOMAIN,
  NAME_TOTAL_LENGTH_MAX,
  OFFICIAL_REPO_PREFIX,
  REFERENCE_INPUT_MAX,
  REFERENCE_RE,
} from './grammar.js';

/**
 * A named image reference. `domain` is empty only for references from the non-normalizing
 * `parseReference` that had no registry part. When both `tag` and `digest` are present, the
 * digest identifies the content; the tag is informational.
 */
export interface ImageReference {
  domain: string;
  path: string;
  tag?: string;
  digest?: Digest;
}

/** What `parseAnyReference` returns for a bare digest or image ID. */
export interface DigestReference {
  digest: Digest;
}

const KNOWN_DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

/** go-digest's `Parse`, limited to the algorithms strata can verify. */
function parseReferenceDigest(value: string, input: string): Digest {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon + 1 === value.length) throw new ReferenceParseError('digest-invalid-format', input);
  const algorithm = value.slice(0, colon);
  const encoded = value.slice(colon + 1);
  const expected = KNOWN_DIGEST_HEX_LENGTH[algorithm];
  if (expected === undefined) {
    if (!ANCHORED_DIGEST_RE.test(value)) throw new ReferenceParseError('digest-invalid-format', input);
    throw new ReferenceParseError('digest-unsupported', input, `unsupported digest algorithm "${algorithm}" (sha256 and sha512 are supported)`);
  }
  if (encoded.length !== expected) {
    throw new ReferenceParseError('digest-invalid-length', input, `${algorithm} digest needs ${expected} hex digits, got ${encoded.length}`);
  }
  if (!/^[a-f0-9]+$/.test(encoded)) throw new ReferenceParseError('digest-invalid-format', input, 'digest must be lowercase hex');
  return value as Digest;
}

function build(domain: string, path: string, tag: string | undefined, digest: Digest | undefined): ImageReference {
  const ref: ImageReference = { domain, path };
  if (tag !== undefined && tag !== '') ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/**
 * distribution/reference `Parse`: no normalization. `test.com:5000` is repository `test.com`
 * with tag `5000`; a first component becomes the domain whenever the grammar allows it.
 */
export function parseReference(input: string): ImageReference {
  if (input.length > REFERENCE_INPUT_MAX)
    throw new ReferenceParseError('invalid-format', input.slice(0, 64) + '…', `reference is longer than ${REFERENCE_INPUT_MAX} characters`);
  const m = REFERENCE_RE.exec(input);
  if (!m) {
    if (input === '') throw new ReferenceParseError('name-empty', input);
    if (REFERENCE_RE.test(input.toLowerCase())) throw new ReferenceParseError('name-uppercase', input);
    throw new ReferenceParseError('invalid-format', input);
  }
  const name = m[1] ?? '';
  const nm = ANCHORED_NAME_RE.exec(name);
  const domain = nm?.[1] ?? '';
  const path = nm ? (nm[2] ?? '') : name;
  if (path.length > NAME_TOTAL_LENGTH_MAX) throw new ReferenceParseError('name-too-long', input);
  const digest = m[3] !== undefined && m[3] !== '' ? parseReferenceDigest(m[3], input) : undefined;
  return build(domain, path, m[2], digest);
}

/** distribution/reference `splitDockerDomain`: the registry heuristic and Docker Hub defaults. */
export function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  if (slash < 0) return { domain: DEFAULT_DOMAIN, remainder: OFFICIAL_REPO_PREFIX + name };
  const maybeDomain = name.slice(0, slash);
  const maybeRemainder = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (maybeDomain === 'localhost' || /[.:]/.test(maybeDomain) || maybeDomain.toLowerCase() !== maybeDomain) {
    // Uppercase namespaces are not allowed, so an uppercase first component must be a host name.
    domain = maybeDomain === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : maybeDomain;
    remainder = maybeRemainder;
  } else {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/**
 * distribution/reference `ParseNormalizedNamed`: `ubuntu` ⇒ `docker.io/library/ubuntu`. Keeps
 * both tag and digest when both are given; adds no default tag.
 */
export function parseNormalizedNamed(input: string): ImageReference {
  if (ANCHORED_IDENTIFIER_RE.test(input)) throw new ReferenceParseError('name-is-identifier', input);
  const { domain, remainder } = splitDockerDomain(input);
  const colon = remainder.indexOf(':');
  const remote = colon < 0 ? remainder : remainder.slice(0, colon);
  if (remote.toLowerCase() !== remote) {
    throw new ReferenceParseError('name-uppercase', input, `repository name (${remote}) must be lowercase`);
  }
  try {
    return parseReference(`${domain}/${remainder}`);
  } catch (cause) {
    // The error would name the normalized text; name what the user typed instead.
    if (cause instanceof ReferenceParseError) throw new ReferenceParseError(cause.reason, input, cause.detail);
    throw cause;
  }
}

/** distribution/reference `ParseNamed`: the input must already be in canonical form. */
export function parseNamed(input: string): ImageReference {
  const ref = parseNormalizedNamed(input);
  if (referenceString(ref) !== input) throw new ReferenceParseError('name-not-canonical', input);
  return ref;
}

/**
 * distribution/reference `ParseDockerRef`: normalized, `:latest` added when there is neither
 * tag nor digest, and the tag dropped when a digest is present (the digest wins).
 */
export function parseDockerRef(input: string): ImageReference {
  const ref = parseNormalizedNamed(input);
  if (ref.digest !== undefined) return { domain: ref.domain, path: ref.path, digest: ref.digest };
  return ref.tag === undefined ? { ...ref, tag: 'latest' } : ref;
}

/** distribution/reference `ParseAnyReference`: a bare 64-hex ID or a digest is a digest reference. */
export function parseAnyReference(input: string): ImageReference | DigestReference {
  if (ANCHORED_IDENTIFIER_RE.test(input)) return { digest: `sha256:${input}` };
  if (input.includes(':') && !input.includes('/') && !input.includes('@')) {
    try {
      return { digest: parseReferenceDigest(input, input) };
    } catch {
      // Not a digest: a name with a tag, handled below.
    }
  }
  return parseNormalizedNamed(input);
}

export function isDigestReference(ref: ImageReference | DigestReference): ref is DigestReference {
  return !('path' in ref);
}

/** distribution/reference `WithName`: a repository name (domain optional), no tag or digest. */
export function parseRepositoryName(name: string): ImageReference {
  const m = name.length <= REFERENCE_INPUT_MAX ? ANCHORED_NAME_RE.exec(name) : null;
  if (!m) throw new ReferenceParseError('invalid-format', name);
  const path = m[2] ?? '';
  if (path.length > NAME_TOTAL_LENGTH_MAX) throw new ReferenceParseError('name-too-long', name);
  return { domain: m[1] ?? '', path };
}

/** distribution/reference `WithTag`: keeps any digest. */
export function withReferenceTag(ref: ImageReference, tag: string): ImageReference {
  if (!ANCHORED_TAG_RE.test(tag)) throw new ReferenceParseError('tag-invalid', `${referenceName(ref)}:${tag}`);
  return { ...ref, tag };
}

/** distribution/reference `WithDigest`: checks the digest grammar only, keeps any tag. */
export function withReferenceDigest(ref: ImageReference, digest: string): ImageReference {
  if (!ANCHORED_DIGEST_RE.test(digest)) throw new ReferenceParseError('digest-invalid-format', `${referenceName(ref)}@${digest}`);
  return { ...ref, digest: digest as Digest };
}

/** `Name()`: domain and path. */
export function referenceName(ref: Pick<ImageReference, 'domain' | 'path'>): string {
  return ref.domain === '' ? ref.path : `${ref.domain}/${ref.path}`;
}

/** `String()`: name, then `:tag`, then `@digest`. */
export function referenceString(ref: ImageReference | DigestReference): string {
  if (isDigestReference(ref)) return ref.digest;
  return referenceName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/** `FamiliarName`: drops `docker.io/` and a single-level `library/`. */
export function familiarName(ref: Pick<ImageReference, 'domain' | 'path'>): string {
  if (ref.domain !== DEFAULT_DOMAIN) return referenceName(ref);
  if (ref.path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = ref.path.slice(OFFICIAL_REPO_PREFIX.length);
    if (!rest.includes('/')) return rest;
  }
  return ref.path;
}

/** `FamiliarString`: what `docker images` shows. */
export function familiarString(ref: ImageReference | DigestReference): string {
  if (isDigestReference(ref)) return ref.digest;
  return familiarName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}
