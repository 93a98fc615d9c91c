import { formatPlatform, type Platform } from '../oci/index.js';

/** The ARGs BuildKit defines for every build, from the target and build platforms. */
export function platformArgs(target: Platform, build: Platform): Map<string, string> {
  return new Map([
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
  ]);
}

/** Proxy ARGs are usable without a declaration and never recorded in history (BuildKit's rule). */
export const PROXY_ARGS = new Set([
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
]);

/** The environment words are expanded against: ARGs in scope, overridden by the image's Env. */
export function expansionEnv(args: ReadonlyMap<string, string>, imageEnv: readonly string[] | undefined): Map<string, string> {
  const env = new Map(args);
  for (const entry of imageEnv ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
    else env.set(entry, '');
  }
  return env;
}

/**
 * BuildKit's ARG that asks for an SBOM of a build stage: `true`, `false` or stage names separated by
 * commas; declared in a stage or before the first FROM (then it holds for every stage).
 */
export const SBOM_SCAN_STAGE_ARG = 'BUILDKIT_SBOM_SCAN_STAGE';

/**
 * BuildKit's ARG that asks for an SBOM of the build context beside the image's: `true`, `false` or stage
 * names (the target's name turns it on); the target stage's own ARG, else the one before the first FROM.
 */
export const SBOM_SCAN_CONTEXT_ARG = 'BUILDKIT_SBOM_SCAN_CONTEXT';
