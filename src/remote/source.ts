import type { Digest } from '../digest/index.js';
import { posix } from 'node:path';
import { StrataError } from '../errors/index.js';

/** A git repository as BuildKit names one: the remote, and from the fragment `#ref:subdir`. */
export interface GitSource {
  /** The remote as git takes it, without the fragment. */
  remote: string;
  /** Branch, tag, commit or full ref; undefined for the remote's HEAD. */
  ref: string | undefined;
  /** A directory inside the checkout, normalized, '' for its root. */
  subdir: string;
  /** The host, for `GIT_AUTH_TOKEN.<host>` and messages. */
  host: string;
  /** ssh transport (`git@host:path` or `ssh://`): goes through the build's ssh agent. */
  ssh: boolean;
}

/**
 * BuildKit's test for a git source (gitutil.ParseGitRef): `git@host:path`, `ssh://`, `git://`, or an
 * http(s) URL whose path ends in `.git`.
 */
export function isGitSource(text: string): boolean {
  if (/^(git|ssh):\/\//i.test(text)) return true;
  if (/^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:/.test(text) && !text.includes('://')) return true;
  if (/^https?:\/\//i.test(text)) {
    try {
      return new URL(text.split('#')[0]!).pathname.endsWith('.git');
    } catch {
      return false;
    }
  }
  return false;
}

/** An http(s) URL that is not a git repository: ADD downloads it. */
export function isHttpSource(text: string): boolean {
  return /^https?:\/\//i.test(text) && !isGitSource(text);
}

export function parseGitSource(text: string): GitSource {
  const hash = text.indexOf('#');
  const remote = hash < 0 ? text : text.slice(0, hash);
  const fragment = hash < 0 ? '' : text.slice(hash + 1);
  const colon = fragment.indexOf(':');
  const ref = (colon < 0 ? fragment : fragment.slice(0, colon)) || undefined;
  const rawSubdir = colon < 0 ? '' : fragment.slice(colon + 1);
  const normalized = posix.normalize(`/${rawSubdir}`).slice(1).replace(/\/$/, '');
  if (rawSubdir.split('/').includes('..')) {
    throw new StrataError('E_USAGE', `git source ${redactUrl(text)}: the subdirectory ${JSON.stringify(rawSubdir)} climbs out of the repository`);
  }
  if (ref !== undefined && (ref.startsWith('-') || /[\s~^:?*[\\]|\.\.|@\{/.test(ref))) {
    throw new StrataError('E_USAGE', `git source ${redactUrl(text)}: ${JSON.stringify(ref)} is not a valid git ref`);
  }
  const scp = /^[A-Za-z0-9._-]+@([A-Za-z0-9.-]+):/.exec(remote);
  let host: string;
  let ssh: boolean;
  if (scp && !remote.includes('://')) {
    host = scp[1]!;
    ssh = true;
  } else {
    let url: URL;
    try {
      url = new URL(remote);
    } catch (cause) {
      throw new StrataError('E_USAGE', `git source ${redactUrl(text)} is not a valid URL`, { cause });
    }
    host = url.hostname;
    ssh = url.protocol === 'ssh:';
  }
  return { remote, ref, subdir: normalized, host, ssh };
}

/** A URL with any user name and password replaced, for messages: they must never reach output. */
export function redactUrl(text: string): string {
  return text.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@#?]*@/, '$1***@');
}

/**
 * What provenance names a fetched source by: the URL as written, without its user name and password
 * (BuildKit's materials keep the rest: a git source's `#ref:subdir`, a URL's query).
 */
export function sourceUri(text: string): string {
  return text.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@#?]*@/, '$1');
}

/** A source's identity for provenance: a download's digest, or a checkout's commit (sha1, or sha256 in a SHA-256 repository). */
export function fetchedSource(text: string, identity: { digest: Digest } | { commit: string }): FetchedSource {
  const digest: Digest = 'digest' in identity ? identity.digest : `${identity.commit.length === 64 ? 'sha256' : 'sha1'}:${identity.commit}`;
  return { uri: sourceUri(text), digest };
}

/** A source outside the build context as fetched: where from (credentials stripped) and what it was. */
export interface FetchedSource {
  uri: string;
  digest: Digest;
}

/** Every URL in a text (a Dockerfile line) with its user name and password replaced. */
export function redactUrlsIn(text: string): string {
  return text.replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@\s#?]*@/g, '$1***@');
}
