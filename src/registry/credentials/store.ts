/**
 * Finds, stores and removes registry credentials the way docker and podman do.
 *
 * Lookup order for `get`: the docker config (`$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`), then `$REGISTRY_AUTH_FILE`, then podman's
 * `$XDG_RUNTIME_DIR/containers/auth.json`, then `~/.config/containers/auth.json` (podman's
 * fallback). In each file: `credHelpers[host]`, else `credsStore`, through the helper program;
 * when the helper has nothing, the file's own `auths` entry.
 */
import { join } from 'node:path';
import { credentialOfEntry, credHelperOf, credsStoreOf, findEntry, readAuthFile, writeAuthFile, type AuthFile } from './config-file.js';
import { helperErase, helperGet, helperProgram, helperStore, spawnHelperRunner } from './helper.js';
import { configKeyFor, registryHostOf } from './keys.js';
import type { CredentialStore, CredentialStoreOptions, FoundCredential, HelperRunner, RegistryCredential } from './types.js';

/** The docker config file that `login` writes. */
export function dockerConfigPath(env: Record<string, string | undefined>, homeDir: string): string {
  const dir = env['DOCKER_CONFIG'];
  return dir !== undefined && dir !== '' ? join(dir, 'config.json') : join(homeDir, '.docker', 'config.json');
}

/** Every file `get` reads, in order. */
export function credentialFiles(env: Record<string, string | undefined>, homeDir: string): string[] {
  const files = [dockerConfigPath(env, homeDir)];
  const authFile = env['REGISTRY_AUTH_FILE'];
  if (authFile !== undefined && authFile !== '') files.push(authFile);
  const runtime = env['XDG_RUNTIME_DIR'];
  if (runtime !== undefined && runtime !== '') files.push(join(runtime, 'containers', 'auth.json'));
  files.push(join(homeDir, '.config', 'containers', 'auth.json'));
  return [...new Set(files)];
}

function helperFor(file: AuthFile, registryHost: string): string | undefined {
  return credHelperOf(file, registryHost) ?? credsStoreOf(file);
}

async function getFromFile(path: string, file: AuthFile, registryHost: string, run: HelperRunner): Promise<FoundCredential | undefined> {
  const helper = helperFor(file, registryHost);
  if (helper !== undefined) {
    const program = helperProgram(helper);
    const credential = await helperGet(run, program, configKeyFor(registryHost));
    if (credential !== undefined) return { credential, source: program };
  }
  const entry = findEntry(file, 'auths', registryHost);
  if (entry === undefined) return undefined;
  const credential = credentialOfEntry(entry.value, path, entry.key);
  return credential === undefined ? undefined : { credential, source: path };
}

/** Removes every `auths` key that names the registry; true when one was there. */
function dropAuthEntries(file: AuthFile, registryHost: string): boolean {
  const auths = file['auths'];
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) return false;
  const table = auths as Record<string, unknown>;
  const host = registryHostOf(registryHost);
  let removed = false;
  for (const key of Object.keys(table)) {
    if (registryHostOf(key) === host) {
      delete table[key];
      removed = true;
    }
  }
  return removed;
}

function authsTable(file: AuthFile): Record<string, unknown> {
  const auths = file['auths'];
  if (typeof auths === 'object' && auths !== null && !Array.isArray(auths)) return auths as Record<string, unknown>;
  const fresh: Record<string, unknown> = {};
  file['auths'] = fresh;
  return fresh;
}

function entryFor(credential: RegistryCredential): Record<string, string> {
  if ('identityToken' in credential) {
    const entry: Record<string, string> = { identitytoken: credential.identityToken };
    if (credential.username !== undefined && credential.username !== '') {
      entry['auth'] = Buffer.from(`${credential.username}:`).toString('base64');
    }
    return entry;
  }
  return { auth: Buffer.from(`${credential.username}:${credential.password}`).toString('base64') };
}

export function createCredentialStore(options: CredentialStoreOptions): CredentialStore {
  const { env, homeDir } = options;
  const run = options.runHelper ?? spawnHelperRunner(env);
  const configPath = dockerConfigPath(env, homeDir);

  return {
    async get(registryHost) {
      for (const path of credentialFiles(env, homeDir)) {
        const file = await readAuthFile(path);
        if (file === undefined) continue;
        const found = await getFromFile(path, file, registryHost, run);
        if (found !== undefined) return found;
      }
      return undefined;
    },

    async login(registryHost, credential) {
      const file = (await readAuthFile(configPath)) ?? {};
      const key = configKeyFor(registryHost);
      const helper = helperFor(file, registryHost);
      dropAuthEntries(file, registryHost);
      if (helper !== undefined) {
        const program = helperProgram(helper);
        await helperStore(run, program, key, credential);
        // docker leaves an empty entry so `docker info`-style listings know of the login.
        authsTable(file)[key] = {};
        await writeAuthFile(configPath, file);
        return { helper: program };
      }
      authsTable(file)[key] = entryFor(credential);
      return { path: await writeAuthFile(configPath, file) };
    },

    async logout(registryHost) {
      const file = await readAuthFile(configPath);
      if (file === undefined) return false;
      const helper = helperFor(file, registryHost);
      let removed = false;
      if (helper !== undefined) removed = await helperErase(run, helperProgram(helper), configKeyFor(registryHost));
      if (dropAuthEntries(file, registryHost)) {
        await writeAuthFile(configPath, file);
        removed = true;
      }
      return removed;
    },
  };
}

/** The plain lookup function the registry client takes: host in, credential (or undefined) out. */
export function credentialLookup(store: CredentialStore): (registryHost: string) => Promise<RegistryCredential | undefined> {
  return async (registryHost) => (await store.get(registryHost))?.credential;
}
