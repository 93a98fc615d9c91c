import type { Image } from '../image/index.js';
import type { ContainerConfig, HistoryEntry } from '../oci/index.js';
import { expansionEnv } from './args.js';

type Owned = 'Labels' | 'ExposedPorts' | 'Volumes';

function envKey(entry: string): string {
  const eq = entry.indexOf('=');
  return eq > 0 ? entry.slice(0, eq) : entry;
}

function envValue(entry: string): string {
  const eq = entry.indexOf('=');
  return eq > 0 ? entry.slice(eq + 1) : '';
}

/**
 * The edits of a run of metadata instructions (ENV, LABEL, ARG, …), made in place on copies taken
 * once and turned into a new image value once, when the image is next read. Copying the config and
 * history per instruction made N instructions cost N² (200,000 ENV lines took minutes).
 * Every edit has the effect the immutable mutators (`setEnvEntry`, `addEmptyHistory`, spreads) have.
 */
export class ConfigDraft {
  readonly config: ContainerConfig;
  private readonly env: string[];
  /** Each Env key's first entry (the one `setEnvEntry` replaces) and last (the one expansion sees). */
  private readonly envFirst = new Map<string, number>();
  private readonly envLast = new Map<string, number>();
  private readonly history: HistoryEntry[] = [];
  private readonly owned = new Set<Owned>();
  private author: string | undefined;
  private configChanged = false;
  private envChanged = false;
  private expansion: Map<string, string> | undefined;

  constructor(private readonly base: Image) {
    this.config = { ...(base.config.config ?? {}) };
    this.env = [...(this.config.Env ?? [])];
    this.env.forEach((entry, i) => {
      const key = envKey(entry);
      if (!this.envFirst.has(key)) this.envFirst.set(key, i);
      this.envLast.set(key, i);
    });
  }

  /** The container config to change: marks the config changed. */
  edit(): ContainerConfig {
    this.configChanged = true;
    return this.config;
  }

  /** A map field of the config, copied on its first edit in this draft. */
  map(field: 'Labels'): Record<string, string>;
  map(field: 'ExposedPorts' | 'Volumes'): Record<string, Record<string, never>>;
  map(field: Owned): Record<string, unknown> {
    const config = this.edit();
    if (!this.owned.has(field)) {
      this.owned.add(field);
      if (field === 'Labels') config.Labels = { ...(config.Labels ?? {}) };
      else config[field] = { ...(config[field] ?? {}) };
    }
    return config[field]!;
  }

  setEnv(key: string, value: string): void {
    this.edit();
    this.envChanged = true;
    const entry = `${key}=${value}`;
    const first = this.envFirst.get(key);
    if (first === undefined) {
      this.envFirst.set(key, this.env.length);
      this.envLast.set(key, this.env.length);
      this.env.push(entry);
    } else {
      this.env[first] = entry;
    }
    if (this.expansion) this.expansion.set(key, envValue(this.env[this.envLast.get(key)!]!));
  }

  /** An ARG changed its value (`undefined`: no longer set); the image's Env still overrides it. */
  setArg(name: string, value: string | undefined): void {
    if (!this.expansion || this.envLast.has(name)) return;
    if (value === undefined) this.expansion.delete(name);
    else this.expansion.set(name, value);
  }

  /** What words expand against: `args` overridden by the Env, kept in step with later edits. */
  expansionEnv(args: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
    this.expansion ??= expansionEnv(args, this.env);
    return this.expansion;
  }

  setAuthor(author: string): void {
    this.author = author;
  }

  addHistory(entry: HistoryEntry): void {
    this.history.push({ ...entry, empty_layer: true });
  }

  /** The image with every edit applied; the base itself when nothing changed. */
  apply(): Image {
    if (!this.configChanged && this.history.length === 0 && this.author === undefined) return this.base;
    const config = { ...this.base.config };
    if (this.author !== undefined) config.author = this.author;
    if (this.configChanged) config.config = this.envChanged ? { ...this.config, Env: this.env } : { ...this.config };
    if (this.history.length) config.history = [...(this.base.config.history ?? []), ...this.history];
    return { ...this.base, config };
  }
}
