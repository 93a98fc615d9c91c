/**
 * Registry keys as they appear in config files: `https://host`, `http://host`, `host`,
 * `host/v1/`, and Docker Hub under `https://index.docker.io/v1/` for any of its names.
 */

/** The key docker writes for Docker Hub. */
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.docker.io']);

/** The bare lowercase host[:port] a key or registry name stands for; Docker Hub's names become `docker.io`. */
export function registryHostOf(key: string): string {
  let rest = key.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(rest);
  if (scheme !== null) rest = rest.slice(scheme[0].length);
  const slash = rest.indexOf('/');
  if (slash >= 0) rest = rest.slice(0, slash);
  const host = rest.toLowerCase();
  return DOCKER_HUB_HOSTS.has(host) ? 'docker.io' : host;
}

/** The key to write for a registry, as docker does: Hub's URL, else the bare host. */
export function configKeyFor(registryHost: string): string {
  const host = registryHostOf(registryHost);
  return host === 'docker.io' ? DOCKER_HUB_KEY : host;
}

export function sameRegistry(a: string, b: string): boolean {
  return registryHostOf(a) === registryHostOf(b);
}
