import { StrataError } from '../errors/index.js';
import type { ContainerConfig } from '../oci/index.js';
import { exposedPortKeys, setEnvEntry } from '../image/index.js';

/** `--set-cmd`/`--set-entrypoint`: a JSON array is the exec form; anything else is shell form. */
export function parseCommandForm(text: string, flag: string): string[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      value = undefined;
    }
    if (Array.isArray(value)) {
      if (!value.every((v): v is string => typeof v === 'string')) {
        throw new StrataError('E_USAGE', `${flag}: a JSON array must hold only strings: ${text}`);
      }
      return value;
    }
  }
  return ['/bin/sh', '-c', text];
}

/** Splits `K=V`; a missing `=` is a usage error naming the flag. */
export function parseKeyValue(text: string, flag: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new StrataError('E_USAGE', `${flag} expects KEY=VALUE, got "${text}"`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/** `80`, `80/tcp`, `53/udp`, `8000-8002/tcp` ⇒ ExposedPorts keys (docker's form). */
export function parsePorts(text: string): string[] {
  const parsed = exposedPortKeys(text);
  if ('invalid' in parsed) throw new StrataError('E_USAGE', `invalid port "${text}": ${parsed.invalid}`);
  return parsed.keys;
}

export interface ConfigEdits {
  env?: readonly string[];
  labels?: readonly string[];
  cmd?: string;
  entrypoint?: string;
  workdir?: string;
  user?: string;
  expose?: readonly string[];
}

export function applyConfigEdits(config: ContainerConfig, edits: ConfigEdits): ContainerConfig {
  const out: ContainerConfig = { ...config };
  for (const e of edits.env ?? []) {
    const [k, v] = parseKeyValue(e, '--set-env');
    out.Env = setEnvEntry(out.Env ?? [], k, v);
  }
  for (const l of edits.labels ?? []) {
    const [k, v] = parseKeyValue(l, '--set-label');
    out.Labels = { ...(out.Labels ?? {}), [k]: v };
  }
  if (edits.entrypoint !== undefined) out.Entrypoint = parseCommandForm(edits.entrypoint, '--set-entrypoint');
  if (edits.cmd !== undefined) out.Cmd = parseCommandForm(edits.cmd, '--set-cmd');
  if (edits.workdir !== undefined) {
    if (!edits.workdir.startsWith('/')) throw new StrataError('E_USAGE', `--set-workdir needs an absolute path, got "${edits.workdir}"`);
    out.WorkingDir = edits.workdir;
  }
  if (edits.user !== undefined) out.User = edits.user;
  for (const p of edits.expose ?? []) {
    for (const key of parsePorts(p)) out.ExposedPorts = { ...(out.ExposedPorts ?? {}), [key]: {} };
  }
  return out;
}
