/**
 * The docker-credential-helpers protocol: `docker-credential-NAME get|store|erase`, the server URL
 * (or a JSON credential for `store`) on stdin, JSON `{ServerURL, Username, Secret}` on stdout.
 * Output and input are never put into errors: they may hold the secret.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { StrataError } from '../../errors/index.js';
import type { HelperResult, HelperRunner, RegistryCredential } from './types.js';

/** Username that marks `Secret` as an identity token (docker's convention). */
export const IDENTITY_TOKEN_USERNAME = '<token>';

export function helperProgram(name: string): string {
  return `docker-credential-${name}`;
}

function findOnPath(program: string, pathValue: string | undefined): string | undefined {
  if (isAbsolute(program)) return program;
  for (const dir of (pathValue ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** Spawns helpers found on the PATH of `env`, with `env` as their environment. */
export function spawnHelperRunner(env: Record<string, string | undefined>): HelperRunner {
  return (program, args, stdin) =>
    new Promise<HelperResult>((resolve, reject) => {
      const path = findOnPath(program, env['PATH']);
      if (path === undefined) {
        reject(
          new StrataError('E_CREDENTIALS', `credential helper ${program} is not on PATH`, {
            hint: `install ${program}, or remove it from credHelpers/credsStore in the docker config file`,
          }),
        );
        return;
      }
      const childEnv: Record<string, string> = {};
      for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
      const child = spawn(path, args, { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', (cause) => reject(new StrataError('E_CREDENTIALS', `cannot run credential helper ${program}`, { cause })));
      child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
      // A helper that exits without reading stdin makes this write fail with EPIPE; its exit code tells the story.
      child.stdin.on('error', () => undefined);
      child.stdin.end(stdin);
    });
}

function isNotFound(result: HelperResult): boolean {
  return /credentials not found/i.test(result.stdout) || /credentials not found/i.test(result.stderr);
}

function failure(program: string, verb: string, serverUrl: string, code: number): StrataError {
  return new StrataError('E_CREDENTIALS', `credential helper ${program} failed to ${verb} credentials for ${serverUrl} (exit code ${code})`, {
    hint: `run '${program} list' to check the helper works; its output is not shown here because it may hold secrets`,
  });
}

export async function helperGet(run: HelperRunner, program: string, serverUrl: string): Promise<RegistryCredential | undefined> {
  const result = await run(program, ['get'], serverUrl);
  if (result.code !== 0) {
    if (isNotFound(result)) return undefined;
    throw failure(program, 'get', serverUrl, result.code);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    throw new StrataError('E_CREDENTIALS', `credential helper ${program} printed something that is not JSON for ${serverUrl}`, {
      hint: `check that ${program} speaks the docker-credential-helpers protocol`,
    });
  }
  const record = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const username = typeof record['Username'] === 'string' ? record['Username'] : '';
  const secret = typeof record['Secret'] === 'string' ? record['Secret'] : '';
  if (secret === '') return undefined;
  if (username === IDENTITY_TOKEN_USERNAME) return { identityToken: secret };
  return { username, password: secret };
}

export async function helperStore(run: HelperRunner, program: string, serverUrl: string, credential: RegistryCredential): Promise<void> {
  const payload =
    'identityToken' in credential
      ? { ServerURL: serverUrl, Username: IDENTITY_TOKEN_USERNAME, Secret: credential.identityToken }
      : { ServerURL: serverUrl, Username: credential.username, Secret: credential.password };
  const result = await run(program, ['store'], JSON.stringify(payload));
  if (result.code !== 0) throw failure(program, 'store', serverUrl, result.code);
}

/** True when the helper had something to erase. */
export async function helperErase(run: HelperRunner, program: string, serverUrl: string): Promise<boolean> {
  const result = await run(program, ['erase'], serverUrl);
  if (result.code === 0) return true;
  if (isNotFound(result)) return false;
  throw failure(program, 'erase', serverUrl, result.code);
}
