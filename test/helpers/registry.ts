/**
 * Starts Debian's `docker-registry` (distribution 2.8) on a free loopback port for a test, with its
 * own storage in a fresh temp dir, in one of three auth variants: anonymous, htpasswd (bcrypt) or
 * token (with the token server of ./token-server.ts). Always call `stop()` (in afterAll).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';
import { startTokenServer, type TokenKeyHeader, type TokenPermissions, type TokenServer } from './token-server.js';

const execFileP = promisify(execFile);

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface StartRegistryOptions {
  auth?: RegistryAuth;
  /** Users for htpasswd and token auth; default `{ tester: 'secret-pass-123' }`. */
  users?: Record<string, string>;
  /** Lifetime of issued tokens (token auth). The registry allows 60 s of clock leeway past `exp`. */
  tokenTtlSeconds?: number;
  /** How tokens name their signing key (token auth); default libtrust `kid`. */
  tokenKeyHeader?: TokenKeyHeader;
  /** Per-account grants (token auth); default: users get what they ask for, anonymous nothing. */
  tokenPermissions?: TokenPermissions;
  /** Serve HTTPS with this certificate and key (PEM files) instead of plain HTTP. */
  tls?: { certPath: string; keyPath: string };
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://127.0.0.1:PORT`, or `https://` with `tls`. */
  url: string;
  auth: RegistryAuth;
  /** The first user (htpasswd and token auth). */
  username?: string;
  password?: string;
  users: Record<string, string>;
  /** Temp dir holding config, storage, logs; removed by stop(). */
  dataDir: string;
  storageDir: string;
  /** The registry's log so far (stdout and stderr). */
  logs(): string;
  tokenServer?: TokenServer;
  stop(): Promise<void>;
}

export const DEFAULT_USERS: Record<string, string> = { tester: 'secret-pass-123' };

async function htpasswdFile(path: string, users: Record<string, string>): Promise<void> {
  const lines: string[] = [];
  for (const [user, pass] of Object.entries(users)) {
    // -B: bcrypt, the only hash distribution's htpasswd accepts. -C 4 keeps tests fast.
    const { stdout } = await execFileP('htpasswd', ['-Bbn', '-C', '4', user, pass]);
    lines.push(stdout.trim());
  }
  await writeFile(path, lines.join('\n') + '\n', { mode: 0o600 });
}

function configYaml(options: {
  port: number;
  storageDir: string;
  auth: RegistryAuth;
  htpasswdPath: string;
  tokenServer: TokenServer | undefined;
  tls: StartRegistryOptions['tls'];
}): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(options.storageDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${options.port}`,
    // A fixed secret silences the "no secret" warning; upload state HMACs need no real secrecy here.
    '  secret: strata-test-secret',
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
  ];
  if (options.tls !== undefined) {
    lines.push('  tls:', `    certificate: ${JSON.stringify(options.tls.certPath)}`, `    key: ${JSON.stringify(options.tls.keyPath)}`);
  }
  if (options.auth === 'htpasswd') {
    lines.push('auth:', '  htpasswd:', '    realm: strata-test', `    path: ${JSON.stringify(options.htpasswdPath)}`);
  } else if (options.auth === 'token' && options.tokenServer !== undefined) {
    const t = options.tokenServer;
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${JSON.stringify(t.realm)}`,
      `    service: ${JSON.stringify(t.service)}`,
      `    issuer: ${JSON.stringify(t.issuer)}`,
      `    rootcertbundle: ${JSON.stringify(t.certPath)}`,
    );
  }
  return lines.join('\n') + '\n';
}

/**
 * Registries still running in this test process. If a test file dies before its afterAll, the exit
 * hook kills them so no docker-registry outlives the test run.
 */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited(child);
  clearTimeout(timer);
}

/** Asked over plain HTTP: a TLS listener (crypto/tls) answers that with 400, which says it is up too. */
async function waitReady(url: string, child: ChildProcess, logPath: string, tls: boolean): Promise<'ready' | 'addr-in-use'> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = readFileSync(logPath, 'utf8');
      if (/address already in use/i.test(log)) return 'addr-in-use';
      throw new Error(`docker-registry exited (code ${child.exitCode ?? child.signalCode}) before it was ready:\n${log}`);
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401 || (tls && res.status === 400)) return 'ready';
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer GET ${url}/v2/ within 20 s:\n${readFileSync(logPath, 'utf8')}`);
}

export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = options.auth ?? 'none';
  const users = options.users ?? DEFAULT_USERS;
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-registry-'));
  const storageDir = join(dataDir, 'storage');
  const configPath = join(dataDir, 'config.yml');
  const htpasswdPath = join(dataDir, 'htpasswd');
  const logPath = join(dataDir, 'registry.log');
  await mkdir(storageDir);

  let tokenServer: TokenServer | undefined;
  let child: ChildProcess | undefined;
  try {
    if (auth === 'htpasswd') await htpasswdFile(htpasswdPath, users);
    if (auth === 'token') {
      tokenServer = await startTokenServer({
        dir: dataDir,
        users,
        ...(options.tokenTtlSeconds !== undefined ? { ttlSeconds: options.tokenTtlSeconds } : {}),
        ...(options.tokenKeyHeader !== undefined ? { keyHeader: options.tokenKeyHeader } : {}),
        ...(options.tokenPermissions !== undefined ? { permissions: options.tokenPermissions } : {}),
      });
    }
    let port = 0;
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      await writeFile(configPath, configYaml({ port, storageDir, auth, htpasswdPath, tokenServer, tls: options.tls }));
      const logFd = openSync(logPath, 'w');
      child = spawn('docker-registry', ['serve', configPath], { stdio: ['ignore', logFd, logFd] });
      closeSync(logFd);
      track(child);
      const spawnError = new Promise<never>((_, reject) => child?.once('error', reject));
      const state = await Promise.race([waitReady(`http://127.0.0.1:${port}`, child, logPath, options.tls !== undefined), spawnError]);
      if (state === 'ready') break;
      await killProcess(child);
      if (attempt >= 5) throw new Error(`docker-registry could not bind a free loopback port after ${attempt + 1} tries`);
    }
    const running = child;
    const firstUser = Object.entries(users)[0];
    const host = `127.0.0.1:${port}`;
    const registry: TestRegistry = {
      host,
      url: `${options.tls !== undefined ? 'https' : 'http'}://${host}`,
      auth,
      users,
      dataDir,
      storageDir,
      logs: () => {
        try {
          return readFileSync(logPath, 'utf8');
        } catch {
          return '';
        }
      },
      async stop() {
        await killProcess(running);
        await tokenServer?.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
    if (auth !== 'none' && firstUser !== undefined) {
      registry.username = firstUser[0];
      registry.password = firstUser[1];
    }
    if (tokenServer !== undefined) registry.tokenServer = tokenServer;
    return registry;
  } catch (err) {
    if (child !== undefined) await killProcess(child);
    await tokenServer?.stop();
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}
