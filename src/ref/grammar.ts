/**
 * The reference grammar of distribution/reference (regexp.go), transcribed. JavaScript's
 * backtracking engine picks the same submatches as Go's leftmost-first semantics for these
 * patterns: the optional domain group is preferred when it can match.
 */
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const namePattern = `(?:${domainAndPort}/)?${remoteName}`;
const tag = '[\\w][\\w.-]{0,127}';
const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';

/** name, tag, digest */
export const REFERENCE_RE = new RegExp(`^(${namePattern})(?::(${tag}))?(?:@(${digest}))?$`);
/** domain (optional), path */
export const ANCHORED_NAME_RE = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
export const ANCHORED_TAG_RE = new RegExp(`^${tag}$`);
export const ANCHORED_DIGEST_RE = new RegExp(`^${digest}$`);
export const ANCHORED_DOMAIN_RE = new RegExp(`^${domainAndPort}$`);
/** A bare 64-hex string is an image ID, never a repository name. */
export const ANCHORED_IDENTIFIER_RE = /^[a-f0-9]{64}$/;

/** distribution/reference's NameTotalLengthMax, applied to the path (without domain). */
export const NAME_TOTAL_LENGTH_MAX = 255;
/**
 * Not in distribution/reference: a bound that keeps the backtracking regexps linear in practice.
 * No real reference comes near it (path 255 + domain + tag 128 + a sha512 digest).
 */
export const REFERENCE_INPUT_MAX = 1024;

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const OFFICIAL_REPO_PREFIX = 'library/';
