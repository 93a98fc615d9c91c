import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface SkopeoResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs skopeo with a policy that accepts anything (the host's policy.json is not ours to rely on)
 * and no TLS verification: the test registries speak plain http on loopback.
 */
export async function skopeo(args: string[], options: { timeoutMs?: number } = {}): Promise<SkopeoResult> {
  try {
    const { stdout, stderr } = await execFileP('skopeo', ['--insecure-policy', ...args], {
      timeout: options.timeoutMs ?? 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { stdout, stderr };
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    const shown = args.map((a, i) => (/creds$/.test(args[i - 1] ?? '') ? '<redacted>' : a));
    throw new Error(`skopeo ${shown.join(' ')} failed: ${e.stderr ?? e.message ?? String(err)}`);
  }
}

/** `--dest-creds`/`--src-creds`/`--creds` value for a registry with users, or no flag. */
export function credsArgs(flag: '--dest-creds' | '--src-creds' | '--creds', reg: { username?: string; password?: string }): string[] {
  return reg.username !== undefined && reg.password !== undefined ? [flag, `${reg.username}:${reg.password}`] : [];
}
