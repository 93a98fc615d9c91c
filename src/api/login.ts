import { StrataError, isStrataError } from '../errors/index.js';
import { parseRegistryHost } from '../ref/index.js';
import type { RegistryCredential } from '../registry/index.js';
import type { RegistryConnection } from '../transports/index.js';

export interface LoginResult {
  registry: string;
  /** Where the credential went: the config file path, or `docker-credential-NAME`. */
  storedIn: string;
}

/**
 * Checks a username and password against the registry, then stores them (or the identity token
 * the registry's token server issued instead) as docker does. The password never appears in a
 * message, an error or a log line.
 */
export async function loginRegistry(host: string, username: string, password: string, conn: RegistryConnection): Promise<LoginResult> {
  const registry = parseRegistryHost(host);
  if (username === '') throw new StrataError('E_USAGE', `login to ${registry}: the username is empty`);
  if (password === '') throw new StrataError('E_USAGE', `login to ${registry}: the password is empty`);
  const given: RegistryCredential = { username, password };
  const client = conn.newClient(registry, async () => given);
  let result: { identityToken?: string };
  try {
    result = await client.checkCredentials();
  } catch (cause) {
    const strata = isStrataError(cause) ? cause : undefined;
    const message = strata?.message ?? (cause instanceof Error ? cause.message : String(cause));
    const hint = strata?.code === 'E_REGISTRY_UNAUTHORIZED' ? 'check the username and password (or token)' : (strata?.hint ?? 'check the registry address');
    // The cause is left out: whatever it carries is not ours to vouch for as free of the secret.
    throw new StrataError(strata?.code ?? 'E_REGISTRY', `login to ${registry} as ${username} failed: ${redact(message, password)}`, { hint });
  }
  const credential: RegistryCredential = result.identityToken !== undefined ? { identityToken: result.identityToken, username } : given;
  const stored = await conn.credentials.login(registry, credential);
  return { registry, storedIn: 'path' in stored ? stored.path : stored.helper };
}

/** Removes the stored credential of a registry; false when there was none. */
export async function logoutRegistry(host: string, conn: RegistryConnection): Promise<{ registry: string; removed: boolean }> {
  const registry = parseRegistryHost(host);
  return { registry, removed: await conn.credentials.logout(registry) };
}

function redact(text: string, secret: string): string {
  return secret.length >= 3 ? text.split(secret).join('<redacted>') : text;
}
