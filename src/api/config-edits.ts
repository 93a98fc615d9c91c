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

/**
 * Edits to an image's config, as `strata append --set-*` takes them or typed: env and labels as
 * `K=V` strings or a record; a command as a string (a JSON array of strings is the exec form, any other
 * text the shell form) or an array (the exec form).
 */
export interface ConfigEdits {
  env?: readonly string[] | Readonly<Record<string, string>>;
  labels?: readonly string[] | Readonly<Record<string, string>>;
  cmd?: string | readonly string[];
  entrypoint?: string | readonly string[];
  workdir?: string;
  user?: string;
  expose?: readonly string[];
}

export function applyConfigEdits(config: ContainerConfig, edits: ConfigEdits): ContainerConfig {
  const out: ContainerConfig = { ...config };
  for (const [k, v] of pairsOf(edits.env, '--set-env')) out.Env = setEnvEntry(out.Env ?? [], k, v);
  for (const [k, v] of pairsOf(edits.labels, '--set-label')) out.Labels = { ...(out.Labels ?? {}), [k]: v };
  if (edits.entrypoint !== undefined) out.Entrypoint = commandOf(edits.entrypoint, '--set-entrypoint');
  if (edits.cmd !== undefined) out.Cmd = commandOf(edits.cmd, '--set-cmd');
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

/** Whether any edit is asked for. */
export function hasEdits(o: ConfigEdits): boolean {
  return (
    pairsOf(o.env, '--set-env').length > 0 ||
    pairsOf(o.labels, '--set-label').length > 0 ||
    (o.expose?.length ?? 0) > 0 ||
    o.cmd !== undefined ||
    o.entrypoint !== undefined ||
    o.workdir !== undefined ||
    o.user !== undefined
  );
}

/** The edits as `strata append` options, for the history entry. */
export function describeEdits(o: ConfigEdits): string {
  const parts: string[] = [];
  for (const [k, v] of pairsOf(o.env, '--set-env')) parts.push(`--set-env ${k}=${v}`);
  for (const [k, v] of pairsOf(o.labels, '--set-label')) parts.push(`--set-label ${k}=${v}`);
  if (o.entrypoint !== undefined) parts.push(`--set-entrypoint ${commandText(o.entrypoint)}`);
  if (o.cmd !== undefined) parts.push(`--set-cmd ${commandText(o.cmd)}`);
  if (o.workdir !== undefined) parts.push(`--set-workdir ${o.workdir}`);
  if (o.user !== undefined) parts.push(`--set-user ${o.user}`);
  for (const p of o.expose ?? []) parts.push(`--set-expose ${p}`);
  return parts.join(' ');
}

function commandText(given: string | readonly string[]): string {
  return typeof given === 'string' ? given : JSON.stringify(given);
}

function pairsOf(given: readonly string[] | Readonly<Record<string, string>> | undefined, flag: string): Array<[string, string]> {
  if (given === undefined) return [];
  if (isStringList(given)) return given.map((text) => parseKeyValue(text, flag));
  return Object.entries(given);
}

function commandOf(given: string | readonly string[], flag: string): string[] {
  return typeof given === 'string' ? parseCommandForm(given, flag) : [...given];
}

function isStringList(value: readonly string[] | Readonly<Record<string, string>>): value is readonly string[] {
  return Array.isArray(value);
}
