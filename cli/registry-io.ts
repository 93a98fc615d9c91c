import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { StrataError, createRegistryIo, parseRegistryHost, type DeadlineOptions, type RegistryConnection, type StrataContext } from '../src/internals.js';
import { configPath, readConfigFile } from './config.js';
import type { CliContext } from './context.js';
import { collect } from './options.js';
import { createProgress, parseProgressMode, type ProgressRenderer } from './progress.js';
import { parseRegistryTimeout } from './registry-timeout.js';

export interface RegistryFlags {
  insecureRegistry?: string[];
  caCert?: string;
  progress?: string;
  registryTimeout?: string;
  skipTlsVerify?: string[];
  registryMirror?: string[];
}

/** The options of every command that may talk to a registry. */
export function addRegistryOptions(command: Command): Command {
  return command
    .option('--insecure-registry <host[:port]>', 'allow plain HTTP to this registry (loopback registries are allowed anyway); repeatable', collect, [])
    .option('--ca-cert <file>', 'PEM file of CA certificates to trust for registries (and https:// proxies) with a private CA')
    .option(
      '--registry-timeout <seconds>',
      'how long a registry request may wait to connect, for its response and inside a body: SECONDS, or connect=S,headers=S,idle=S (default 30 each)',
    )
    .addOption(skipTlsVerifyOption())
    .option('--registry-mirror <host[:port]>', "pull docker.io images through this mirror first (kaniko's flag); repeatable", collect, [])
    .option('--progress <mode>', 'transfer progress on stderr: auto, plain, tty, json or quiet', 'auto');
}

/** `--skip-tls-verify[=HOST]` (kaniko's flag): without a host, every registry. */
export function skipTlsVerifyOption(): Option {
  return new Option('--skip-tls-verify [host[:port]]', 'accept any TLS certificate from this registry (every registry without =HOST); insecure; repeatable')
    .preset('*')
    .argParser(collect);
}

/**
 * Registry access for a command that cannot wrap its work in `withRegistry`; TTY progress is then
 * not redrawn one last time at the end.
 */
export function registryIo(cli: CliContext, api: StrataContext, flags: RegistryFlags = {}): RegistryConnection {
  return setup(cli, api, flags).io;
}

/**
 * Runs `work` with registry access built from the flags, the environment (credentials) and a
 * progress renderer on stderr, which is finished however `work` ends.
 */
export async function withRegistry<T>(cli: CliContext, api: StrataContext, flags: RegistryFlags, work: (io: RegistryConnection) => Promise<T>): Promise<T> {
  const { io, progress } = setup(cli, api, flags);
  try {
    return await work(io);
  } finally {
    progress.finish();
  }
}

function setup(cli: CliContext, api: StrataContext, flags: RegistryFlags): { io: RegistryConnection; progress: ProgressRenderer } {
  const mode = parseProgressMode(flags.progress);
  const insecure = (flags.insecureRegistry ?? []).map((h) => {
    try {
      return parseRegistryHost(h);
    } catch (cause) {
      throw new StrataError('E_USAGE', `--insecure-registry ${h}: expected host[:port]`, { cause });
    }
  });
  const skipTlsVerify = (flags.skipTlsVerify ?? []).map((h) => {
    if (h === '*') return h;
    try {
      return parseRegistryHost(h);
    } catch (cause) {
      throw new StrataError('E_USAGE', `--skip-tls-verify ${h}: expected host[:port]`, {
        cause,
        hint: 'write --skip-tls-verify=HOST, or the flag alone for every registry',
      });
    }
  });
  const registryMirrors = mirrorsOf(cli, flags.registryMirror ?? []);
  const progress = createProgress(mode, cli.stderr, (cli.stderr as { isTTY?: boolean }).isTTY === true);
  const io = createRegistryIo({
    env: cli.env,
    homeDir: cli.env.HOME ?? homedir(),
    insecureRegistries: insecure,
    caCert: trustedCaCerts(cli, flags.caCert),
    deadlines: registryDeadlines(cli, flags),
    progress: progress.listener,
    blobLocationsFile: join(api.storeRoot, 'cache', 'blob-locations.json'),
    skipTlsVerify,
    registryMirrors,
    warn: (message) => cli.stderr.write(`WARNING: ${message}\n`),
  });
  return { io, progress };
}

/** --registry-timeout, else the config file's `registryTimeout`, else the defaults. */
function registryDeadlines(cli: CliContext, flags: RegistryFlags): DeadlineOptions | undefined {
  if (flags.registryTimeout !== undefined) return parseRegistryTimeout(flags.registryTimeout, '--registry-timeout');
  const configured = readConfigFile(cli).registryTimeout;
  return configured === undefined ? undefined : parseRegistryTimeout(configured, `${configPath(cli)}: registryTimeout`);
}

/**
 * Mirrors per registry: `--registry-mirror` (for docker.io, as kaniko's and docker's daemon.json mirrors are),
 * then the config file's `registry-mirrors` map.
 */
function mirrorsOf(cli: CliContext, flagged: readonly string[]): Record<string, string[]> {
  const host = (h: string, where: string): string => {
    try {
      return parseRegistryHost(h.replace(/^https?:\/\//, '').replace(/\/+$/, ''));
    } catch (cause) {
      throw new StrataError('E_USAGE', `${where} ${h}: expected host[:port]`, { cause });
    }
  };
  const out: Record<string, string[]> = {};
  const add = (registry: string, hosts: readonly string[], where: string): void => {
    const list = (out[registry] ??= []);
    for (const h of hosts) if (!list.includes(host(h, where))) list.push(host(h, where));
  };
  add('docker.io', flagged, '--registry-mirror');
  for (const [registry, hosts] of Object.entries(readConfigFile(cli).registryMirrors ?? {}))
    add(registry === 'index.docker.io' ? 'docker.io' : registry, hosts, 'registry-mirrors:');
  return out;
}

/**
 * PEM text of the CAs registry connections trust besides the well-known ones: --ca-cert's, and with it
 * NODE_EXTRA_CA_CERTS's, since --ca-cert gives connections a trust store of their own, which Node's extra
 * CAs would not reach.
 */
function trustedCaCerts(cli: CliContext, caCertFlag: string | undefined): string | undefined {
  const flagged = caCertFlag === undefined ? undefined : readCaCert(resolve(cli.cwd, caCertFlag), caCertFlag);
  const nodeExtra = cli.env.NODE_EXTRA_CA_CERTS;
  const extraFile = flagged !== undefined && nodeExtra !== undefined && nodeExtra !== '' ? nodeExtra : undefined;
  const extra = extraFile === undefined ? undefined : readExtraCaCerts(extraFile, cli);
  const texts = [extra, flagged].filter((t): t is string => t !== undefined);
  return texts.length === 0 ? undefined : texts.join('\n');
}

/** As Node does with NODE_EXTRA_CA_CERTS: a file that cannot be read is ignored, with a warning. */
function readExtraCaCerts(path: string, cli: CliContext): string | undefined {
  try {
    return readFileSync(resolve(cli.cwd, path), 'utf8');
  } catch (cause) {
    cli.stderr.write(`WARNING: ignoring NODE_EXTRA_CA_CERTS ${path}: ${(cause as Error).message}\n`);
    return undefined;
  }
}

function readCaCert(path: string, given: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new StrataError('E_IO', `cannot read --ca-cert ${given}: ${(cause as Error).message}`, { hint: 'give a PEM file of CA certificates' });
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new StrataError('E_USAGE', `--ca-cert ${given} holds no PEM certificate`, { hint: 'the file must contain -----BEGIN CERTIFICATE----- blocks' });
  }
  return text;
}
