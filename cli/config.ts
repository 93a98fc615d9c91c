import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { StrataError, parseSize } from '../src/internals.js';
import type { CliContext } from './context.js';

/** Settings a user keeps instead of repeating flags: `$STRATA_CONFIG`, else `$XDG_CONFIG_HOME/strata/config.json`. */
export interface StrataConfigFile {
  /** The executor for RUN steps when --executor is not given. */
  executor?: string;
  /** Registries reached over plain HTTP, as with --insecure-registry. */
  insecureRegistries?: string[];
  /** Registry request deadlines, as with --registry-timeout: seconds, or "connect=S,headers=S,idle=S". */
  registryTimeout?: string | number;
  /** The bound on the store's cache after each build (`"5GB"`, or `"off"`); default a tenth of the free disk. */
  cacheLimit?: number | 'off';
  /** `"registry-mirrors": {"docker.io": ["mirror.example:5000"]}`: mirrors to pull through, per registry. */
  registryMirrors?: Record<string, string[]>;
}

export function configPath(cli: CliContext): string {
  if (cli.env.STRATA_CONFIG) return cli.env.STRATA_CONFIG;
  const base = cli.env.XDG_CONFIG_HOME || join(cli.env.HOME ?? homedir(), '.config');
  return join(base, 'strata', 'config.json');
}

/** The config file's settings; none when there is no file. A file that is there must be valid. */
export function readConfigFile(cli: CliContext): StrataConfigFile {
  const path = configPath(cli);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new StrataError('E_USAGE', `${path}: not valid JSON (${(cause as Error).message})`, { cause });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new StrataError('E_USAGE', `${path}: expected a JSON object`);
  const config = value as Record<string, unknown>;
  const out: StrataConfigFile = {};
  if (config.executor !== undefined) {
    if (typeof config.executor !== 'string') throw new StrataError('E_USAGE', `${path}: "executor" must be a string`);
    out.executor = config.executor;
  }
  if (config.insecureRegistries !== undefined) {
    if (!Array.isArray(config.insecureRegistries) || !config.insecureRegistries.every((r) => typeof r === 'string')) {
      throw new StrataError('E_USAGE', `${path}: "insecureRegistries" must be a list of host[:port] strings`);
    }
    out.insecureRegistries = config.insecureRegistries as string[];
  }
  if (config.registryTimeout !== undefined) {
    if (typeof config.registryTimeout !== 'string' && typeof config.registryTimeout !== 'number') {
      throw new StrataError('E_USAGE', `${path}: "registryTimeout" must be seconds or "connect=S,headers=S,idle=S"`);
    }
    out.registryTimeout = config.registryTimeout;
  }
  if (config.cacheLimit !== undefined) {
    if (typeof config.cacheLimit !== 'string') throw new StrataError('E_USAGE', `${path}: "cacheLimit" must be a size such as "5GB", or "off"`);
    out.cacheLimit = config.cacheLimit === 'off' ? 'off' : parseSize(config.cacheLimit);
  }
  const mirrors = config['registry-mirrors'];
  if (mirrors !== undefined) {
    const valid =
      mirrors !== null &&
      typeof mirrors === 'object' &&
      !Array.isArray(mirrors) &&
      Object.values(mirrors).every((hosts) => Array.isArray(hosts) && hosts.every((h) => typeof h === 'string'));
    if (!valid)
      throw new StrataError('E_USAGE', `${path}: "registry-mirrors" must map registries to lists of mirror hosts, e.g. {"docker.io": ["mirror.example:5000"]}`);
    out.registryMirrors = mirrors as Record<string, string[]>;
  }
  return out;
}
