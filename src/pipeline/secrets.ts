import { access, constants, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { StrataError, ioError } from '../errors/index.js';
import { makeScratchDir, type LocalStore } from '../store/index.js';

/** `--secret` and `--ssh` turned into host files and sockets for the build's duration. */
export function sshSockets(specs: readonly string[], env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const id = eq < 0 ? spec : spec.slice(0, eq);
    const socket = eq < 0 ? env.SSH_AUTH_SOCK : resolve(spec.slice(eq + 1));
    if (!id || !socket) throw new StrataError('E_USAGE', `--ssh ${spec}: no agent socket (set SSH_AUTH_SOCK or give ${id || 'default'}=SOCKET)`);
    out[id] = socket;
  }
  return out;
}

/** A build's secrets as files (id → path) and how to remove the ones written for it. */
export interface PreparedSecrets {
  files: Record<string, string>;
  cleanup: () => Promise<void>;
}

/**
 * `--secret id=ID,src=FILE` is used in place; `env=VAR` is written to a private file (mode 0600) for
 * the build's duration. Secret values never reach the engine's keys, history or layers.
 */
export async function prepareSecrets(specs: readonly string[], env: Readonly<Record<string, string | undefined>>, store: LocalStore): Promise<PreparedSecrets> {
  const files: Record<string, string> = {};
  let dir: string | undefined;
  for (const spec of specs) {
    const fields = new Map(
      spec.split(',').map((p) => {
        const eq = p.indexOf('=');
        return eq < 0 ? ([p, ''] as const) : ([p.slice(0, eq), p.slice(eq + 1)] as const);
      }),
    );
    const id = fields.get('id');
    if (!id) throw new StrataError('E_USAGE', `--secret ${spec.replace(/=.*/, '=…')}: needs id=ID`);
    const src = fields.get('src') ?? fields.get('source');
    const envName = fields.get('env');
    if (src) {
      files[id] = resolve(src);
      await stat(files[id]).catch((cause: unknown) => {
        throw ioError(`read --secret ${id}`, files[id]!, cause);
      });
    } else {
      const name = envName ?? id;
      const value = env[name];
      if (value === undefined) throw new StrataError('E_USAGE', `--secret id=${id}: environment variable ${name} is not set`);
      dir ??= await secretsDir(env, store);
      const file = join(dir, id.replace(/[^A-Za-z0-9._-]/g, '_'));
      await writeFile(file, value, { mode: 0o600 });
      files[id] = file;
    }
  }
  return {
    files,
    cleanup: async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

const TMPFS_MAGIC = 0x01021994;

/**
 * Where `env=` secrets are written: a tmpfs when there is one (/dev/shm, else $XDG_RUNTIME_DIR), so a
 * crash leaves nothing on disk and a reboot clears it; else the store's scratch directory. Either way
 * the directory names its owner, and a later run removes it once that process is dead.
 */
async function secretsDir(env: Readonly<Record<string, string | undefined>>, store: LocalStore): Promise<string> {
  for (const base of secretTmpfsDirs(env)) {
    try {
      if ((await statfs(base)).type !== TMPFS_MAGIC) continue;
      await access(base, constants.W_OK | constants.X_OK);
      return await makeScratchDir(base, 'strata-secrets');
    } catch {
      // Not usable here: try the next.
    }
  }
  return makeScratchDir(store.tmpDir, 'secrets');
}

/** The tmpfs directories secrets may go to, in order of preference (also swept for leftovers). */
export function secretTmpfsDirs(env: Readonly<Record<string, string | undefined>>): string[] {
  return ['/dev/shm', ...(env.XDG_RUNTIME_DIR ? [env.XDG_RUNTIME_DIR] : [])];
}
