import type { ErrorCode } from '../errors/index.js';
import type { DockerfileHeredoc, DockerfileNode } from './ast.js';
import { parseGoDuration } from './duration.js';
import { FlagError, parseFlags, type FlagType, type ParsedFlags } from './flags.js';
import { goQuote } from './gostr.js';
import { chompHeredocContent, parseHeredocMarker } from './heredoc.js';
import type { DockerfileHealthcheck, InstructionKeyValue, InstructionSourceContent } from './instructions.js';

/** Reading an instruction node's words and flags, shared by the typed instructions (typed.ts). */

const FLAG_SPECS: Record<string, Record<string, FlagType>> = {
  from: { platform: 'string' },
  run: { mount: 'strings', network: 'string', security: 'string' },
  copy: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  add: { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', exclude: 'strings', unpack: 'bool' },
  healthcheck: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

const MIN_HEALTH_INTERVAL_NS = 1e6;

export class InstructionFailure extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly flag?: string,
    readonly code: ErrorCode = 'E_DOCKERFILE_INSTRUCTION',
  ) {
    super(message);
  }
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j] as number;
      prev[j] = Math.min((prev[j] as number) + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length] as number;
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

export const stringArgs = (node: DockerfileNode): string[] => node.args.filter((a): a is string => typeof a === 'string');

const NO_FLAGS: ParsedFlags = { bool: () => undefined, string: () => undefined, strings: () => [] };

export function flagsFor(node: DockerfileNode): ParsedFlags {
  if (node.flags.length === 0) return NO_FLAGS;
  try {
    return parseFlags(node.flags, FLAG_SPECS[node.cmd] ?? {});
  } catch (err) {
    if (err instanceof FlagError) {
      const suggestion = closest(err.flagName, err.known);
      const hint =
        err.known.length === 0
          ? `${node.cmd.toUpperCase()} takes no flags`
          : suggestion !== undefined
            ? `did you mean --${suggestion}? ${node.cmd.toUpperCase()} accepts ${err.known.map((k) => `--${k}`).join(', ')}`
            : `${node.cmd.toUpperCase()} accepts ${err.known.map((k) => `--${k}`).join(', ')}`;
      throw new InstructionFailure(err.message, hint, err.flagName);
    }
    throw err;
  }
}

export const exactlyOne = (node: DockerfileNode): string => {
  const args = stringArgs(node);
  if (args.length !== 1) throw new InstructionFailure(`${node.cmd.toUpperCase()} requires exactly one argument`);
  return args[0] as string;
};

export function commandLine(node: DockerfileNode): { args: string[]; prependShell: boolean } {
  const args = stringArgs(node);
  return node.json ? { args, prependShell: false } : { args: [args.join(' ')], prependShell: true };
}

export function keyValues(node: DockerfileNode): InstructionKeyValue[] {
  const name = node.cmd.toUpperCase();
  const args = stringArgs(node);
  if (args.length === 0) throw new InstructionFailure(`${name} requires at least one argument`);
  if (args.length % 3 !== 0) throw new InstructionFailure(`Bad input to ${name}, too many arguments`);
  const out: InstructionKeyValue[] = [];
  for (let i = 0; i < args.length; i += 3) {
    const key = args[i] as string;
    if (key === '') throw new InstructionFailure(`${name} names can not be blank`);
    out.push({ key, value: args[i + 1] as string, separator: args[i + 2] === '=' ? '=' : '' });
  }
  return out;
}

function duration(flags: ParsedFlags, name: string): number {
  const raw = flags.string(name);
  if (raw === undefined || raw === '') return 0;
  const ns = parseGoDuration(raw);
  if (ns === undefined)
    throw new InstructionFailure(`time: invalid duration ${goQuote(raw)} for --${name}`, 'use a Go duration such as 30s, 1m30s or 500ms', name);
  if (ns < 0) throw new InstructionFailure(`Interval "${name}" cannot be negative`, undefined, name);
  if (ns !== 0 && ns < MIN_HEALTH_INTERVAL_NS) throw new InstructionFailure(`Interval "${name}" cannot be less than 1ms`, undefined, name);
  return ns;
}

export function healthcheck(node: DockerfileNode, flags: ParsedFlags): DockerfileHealthcheck {
  const args = stringArgs(node);
  if (args.length === 0) throw new InstructionFailure('HEALTHCHECK requires at least one argument', 'use HEALTHCHECK NONE or HEALTHCHECK CMD <command>');
  const type = (args[0] as string).toUpperCase();
  const rest = args.slice(1);
  const empty = { interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
  if (type === 'NONE') {
    if (rest.length !== 0) throw new InstructionFailure('HEALTHCHECK NONE takes no arguments');
    return { test: ['NONE'], ...empty };
  }
  if (type !== 'CMD') throw new InstructionFailure(`Unknown type ${goQuote(type)} in HEALTHCHECK (try CMD)`);
  if (rest.length === 0) throw new InstructionFailure('Missing command after HEALTHCHECK CMD');
  const test = node.json ? ['CMD', ...rest] : ['CMD-SHELL', rest.join(' ')];
  let retries = 0;
  const rawRetries = flags.string('retries');
  if (rawRetries !== undefined && rawRetries !== '') {
    if (!/^[+-]?[0-9]+$/.test(rawRetries) || Math.abs(Number(rawRetries)) > 2147483647) {
      throw new InstructionFailure(`invalid value for --retries: ${goQuote(rawRetries)}`, 'use a whole number', 'retries');
    }
    retries = Number(rawRetries);
    if (retries < 0) throw new InstructionFailure(`--retries cannot be negative (${retries})`, undefined, 'retries');
  }
  return {
    test,
    interval: duration(flags, 'interval'),
    timeout: duration(flags, 'timeout'),
    startPeriod: duration(flags, 'start-period'),
    startInterval: duration(flags, 'start-interval'),
    retries,
  };
}

export function sourcesAndDest(node: DockerfileNode): { sources: string[]; sourceContents: InstructionSourceContent[]; dest: string } {
  const name = node.cmd.toUpperCase();
  const args = stringArgs(node);
  if (args.length < 2) {
    throw new InstructionFailure(
      `${name} requires at least two arguments, but only one was provided. Destination could not be determined.`,
      `write ${name} <source>... <destination>`,
    );
  }
  const dest = args[args.length - 1] as string;
  const srcs = args.slice(0, -1);
  if (node.json) return { sources: srcs, sourceContents: [], dest };
  if (parseMarkerSafe(dest) !== undefined) throw new InstructionFailure(`${name} cannot accept a heredoc as a destination`);
  const byName = new Map<string, DockerfileHeredoc>(node.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const sourceContents: InstructionSourceContent[] = [];
  for (const src of srcs) {
    const marker = parseMarkerSafe(src);
    const doc = marker === undefined ? undefined : byName.get(marker.name);
    if (marker !== undefined && doc !== undefined) {
      sourceContents.push({ path: marker.name, data: marker.chomp ? chompHeredocContent(doc.content) : doc.content, expand: marker.expand });
    } else {
      sources.push(src);
    }
  }
  return { sources, sourceContents, dest };
}

function parseMarkerSafe(word: string): ReturnType<typeof parseHeredocMarker> {
  try {
    return parseHeredocMarker(word);
  } catch {
    return undefined;
  }
}
