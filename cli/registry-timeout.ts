import { StrataError, type DeadlineOptions } from '../src/internals.js';

const PHASES = { connect: 'connectMs', headers: 'headersMs', idle: 'idleMs' } as const;

/**
 * `--registry-timeout` (or the config file's `registryTimeout`): seconds for every deadline of a
 * registry request (`20`), or per phase (`connect=5,headers=60,idle=30`); phases not named keep
 * their default.
 */
export function parseRegistryTimeout(value: string | number, where: string): DeadlineOptions {
  const seconds = (text: string): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n <= 0) {
      throw new StrataError('E_USAGE', `${where}: "${text}" is not a positive number of seconds`, { hint: 'give SECONDS, or connect=S,headers=S,idle=S' });
    }
    return Math.round(n * 1000);
  };
  const text = String(value);
  if (!text.includes('=')) {
    const ms = seconds(text);
    return { connectMs: ms, headersMs: ms, idleMs: ms };
  }
  const out: DeadlineOptions = {};
  for (const part of text.split(',')) {
    const [name = '', v = ''] = part.split('=', 2).map((s) => s.trim());
    if (!Object.hasOwn(PHASES, name)) {
      throw new StrataError('E_USAGE', `${where}: unknown phase "${name}"`, { hint: 'the phases are connect, headers and idle' });
    }
    out[PHASES[name as keyof typeof PHASES]] = seconds(v);
  }
  return out;
}
