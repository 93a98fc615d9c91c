/**
 * Reading and writing docker-style auth files (`config.json`, podman's `auth.json`). Unknown keys
 * are kept as they are; a write goes to a temp file that is renamed over the original.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { errnoCode, ioError, StrataError } from '../../errors/index.js';
import { registryHostOf } from './keys.js';
import type { RegistryCredential } from './types.js';

export type AuthFile = Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The parsed file, or undefined when it does not exist. */
export async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw ioError('read credentials file', path, err);
  }
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text, which may hold secrets: say where, not what.
    throw new StrataError('E_CREDENTIALS', `credentials file ${path} is not valid JSON`, {
      hint: 'fix or remove the file, or log in again',
    });
  }
  if (!isRecord(parsed)) {
    throw new StrataError('E_CREDENTIALS', `credentials file ${path} does not hold a JSON object`, {
      hint: 'fix or remove the file, or log in again',
    });
  }
  return parsed;
}

/** The entry of `section` (`auths` or `credHelpers`) whose key names the registry. */
export function findEntry(file: AuthFile, section: string, registryHost: string): { key: string; value: unknown } | undefined {
  const table = file[section];
  if (!isRecord(table)) return undefined;
  const host = registryHostOf(registryHost);
  // An exact key wins over another spelling of the same host.
  if (table[registryHost] !== undefined) return { key: registryHost, value: table[registryHost] };
  for (const [key, value] of Object.entries(table)) {
    if (registryHostOf(key) === host) return { key, value };
  }
  return undefined;
}

export function credsStoreOf(file: AuthFile): string | undefined {
  const store = file['credsStore'];
  return typeof store === 'string' && store !== '' ? store : undefined;
}

export function credHelperOf(file: AuthFile, registryHost: string): string | undefined {
  const entry = findEntry(file, 'credHelpers', registryHost);
  return typeof entry?.value === 'string' && entry.value !== '' ? entry.value : undefined;
}

/** The credential of an `auths` entry; undefined for entries that hold none (e.g. `{}` left by a helper login). */
export function credentialOfEntry(entry: unknown, path: string, key: string): RegistryCredential | undefined {
  if (!isRecord(entry)) return undefined;
  let username: string | undefined;
  let password: string | undefined;
  const auth = entry['auth'];
  if (typeof auth === 'string' && auth !== '') {
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new StrataError('E_CREDENTIALS', `credentials file ${path}: the "auth" of "${key}" is not base64 of user:password`, {
        hint: `log in to ${key} again`,
      });
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  } else {
    if (typeof entry['username'] === 'string') username = entry['username'];
    if (typeof entry['password'] === 'string') password = entry['password'];
  }
  const identityToken = entry['identitytoken'];
  if (typeof identityToken === 'string' && identityToken !== '') {
    return username !== undefined && username !== '' ? { identityToken, username } : { identityToken };
  }
  if (username !== undefined && password !== undefined && (username !== '' || password !== '')) return { username, password };
  return undefined;
}

/** Writes `file` to `path` as docker does: tab-indented, mode 0600, in a 0700 directory, atomically. */
export async function writeAuthFile(path: string, file: AuthFile): Promise<string> {
  let target = path;
  try {
    // Keep a symlinked config.json a symlink: write where it points.
    target = await realpath(path);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw ioError('resolve credentials file', path, err);
  }
  const dir = dirname(target);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw ioError('create directory', dir, err);
  }
  const temp = join(dir, `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temp, JSON.stringify(file, null, '\t') + '\n', { mode: 0o600, flag: 'wx' });
    // The mode given at creation is masked by the umask; make sure.
    await chmod(temp, 0o600);
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw ioError('write credentials file', target, err);
  }
  return target;
}
