/**
 * Per-instruction flag checking as BuildKit's BFlags does it: known names only, string flags need a value,
 * bool flags take `true`/`false` or nothing, only list flags may repeat.
 */

export type FlagType = 'bool' | 'string' | 'strings';

export class FlagError extends Error {
  constructor(
    message: string,
    readonly flagName: string,
    readonly known: readonly string[],
  ) {
    super(message);
  }
}

export interface ParsedFlags {
  bool(name: string): boolean | undefined;
  string(name: string): string | undefined;
  strings(name: string): string[];
}

export function parseFlags(raw: readonly string[], spec: Readonly<Record<string, FlagType>>): ParsedFlags {
  const known = Object.keys(spec);
  const values = new Map<string, string[]>();
  for (const word of raw) {
    if (!word.startsWith('--')) throw new FlagError(`arg should start with -- : ${word}`, word, known);
    if (word === '--') break;
    let name = word.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const type = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (type === undefined) throw new FlagError(`unknown flag: ${name}`, name, known);
    const seen = values.get(name);
    if (seen !== undefined && type !== 'strings') throw new FlagError(`duplicate flag specified: ${name}`, name, known);
    if (type === 'bool') {
      if (value !== undefined && value === '') throw new FlagError(`missing a value on flag: ${name}`, name, known);
      const lower = (value ?? 'true').toLowerCase();
      if (lower !== 'true' && lower !== 'false') {
        throw new FlagError(`expecting boolean value for flag ${name}, not: ${value ?? ''}`, name, known);
      }
      values.set(name, [lower]);
      continue;
    }
    if (value === undefined) throw new FlagError(`missing a value on flag: ${name}`, name, known);
    values.set(name, [...(seen ?? []), value]);
  }
  return {
    bool: (name) => {
      const v = values.get(name);
      return v === undefined ? undefined : v[0] === 'true';
    },
    string: (name) => values.get(name)?.[0],
    strings: (name) => values.get(name) ?? [],
  };
}
