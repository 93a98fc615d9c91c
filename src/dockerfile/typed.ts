import type { ErrorCode } from '../errors/index.js';
import type { DockerfileHeredoc, DockerfileNode } from './ast.js';
import { parseGoDuration } from './duration.js';
import { DockerfileError } from './errors.js';
import { FlagError, parseFlags, type FlagType, type ParsedFlags } from './flags.js';
import { goQuote, trimGoSpace } from './gostr.js';
import { chompHeredocContent, parseHeredocMarker } from './heredoc.js';
import type {
  ArgInstruction,
  DockerfileStage,
  FromInstruction,
  DockerfileHealthcheck,
  Instruction,
  InstructionKeyValue,
  InstructionLocation,
  InstructionSourceContent,
  DockerfileParseWarning,
  ParsedDockerfile,
} from './instructions.js';
import { parseDockerfileAst, type ParseDockerfileOptions } from './parser.js';

const INSTRUCTIONS = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const;

const FLAG_SPECS: Record<string, Record<string, FlagType>> = {
  from: { platform: 'string' },
  run: { mount: 'strings', network: 'string', security: 'string' },
  copy: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  add: { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', exclude: 'strings', unpack: 'bool' },
  healthcheck: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;
const MIN_HEALTH_INTERVAL_NS = 1e6;

class InstructionFailure extends Error {
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

function closest(word: string, candidates: readonly string[]): string | undefined {
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

const stringArgs = (node: DockerfileNode): string[] => node.args.filter((a): a is string => typeof a === 'string');

const NO_FLAGS: ParsedFlags = { bool: () => undefined, string: () => undefined, strings: () => [] };

function flagsFor(node: DockerfileNode): ParsedFlags {
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

const exactlyOne = (node: DockerfileNode): string => {
  const args = stringArgs(node);
  if (args.length !== 1) throw new InstructionFailure(`${node.cmd.toUpperCase()} requires exactly one argument`);
  return args[0] as string;
};

function commandLine(node: DockerfileNode): { args: string[]; prependShell: boolean } {
  const args = stringArgs(node);
  return node.json ? { args, prependShell: false } : { args: [args.join(' ')], prependShell: true };
}

function keyValues(node: DockerfileNode): InstructionKeyValue[] {
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

function healthcheck(node: DockerfileNode, flags: ParsedFlags): DockerfileHealthcheck {
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

function sourcesAndDest(node: DockerfileNode): { sources: string[]; sourceContents: InstructionSourceContent[]; dest: string } {
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

const RUN_NETWORKS = new Set(['default', 'none', 'host']);
const RUN_SECURITY = new Set(['sandbox', 'insecure']);

function toInstruction(node: DockerfileNode, location: InstructionLocation): Instruction {
  const base = { location, original: node.original };
  const flags = flagsFor(node);
  const args = stringArgs(node);
  switch (node.cmd) {
    case 'from': {
      if (args.length !== 1 && args.length !== 3) {
        throw new InstructionFailure('FROM requires either one or three arguments', 'write FROM <image> [AS <name>]');
      }
      const out: FromInstruction = { kind: 'FROM', ...base, image: args[0] as string };
      if (args.length === 3) {
        if ((args[1] as string).toLowerCase() !== 'as') {
          throw new InstructionFailure('Second argument of FROM must be "AS"', 'write FROM <image> AS <name>');
        }
        const name = (args[2] as string).toLowerCase();
        if (!STAGE_NAME.test(name)) {
          throw new InstructionFailure(
            `invalid name for build stage: ${goQuote(args[2] as string)}, name can't start with a number or contain symbols`,
            'stage names start with a letter and use only letters, digits, -, _ and .',
          );
        }
        out.stageName = name;
      }
      const platform = flags.string('platform');
      if (platform !== undefined) out.platform = platform;
      return out;
    }
    case 'run': {
      if (args.length === 0) throw new InstructionFailure('RUN requires at least one argument');
      const network = flags.string('network');
      const security = flags.string('security');
      if (network !== undefined && !RUN_NETWORKS.has(network)) {
        throw new InstructionFailure(`network mode ${goQuote(network)} not supported`, 'use --network=default, none or host', 'network');
      }
      if (security !== undefined && !RUN_SECURITY.has(security)) {
        throw new InstructionFailure(`security mode ${goQuote(security)} not supported`, 'use --security=sandbox or insecure', 'security');
      }
      return {
        kind: 'RUN',
        ...base,
        ...commandLine(node),
        mounts: flags.strings('mount'),
        ...(network === undefined ? {} : { network }),
        ...(security === undefined ? {} : { security }),
        heredocs: node.heredocs,
      };
    }
    case 'cmd':
      return { kind: 'CMD', ...base, ...commandLine(node) };
    case 'entrypoint':
      return { kind: 'ENTRYPOINT', ...base, ...commandLine(node) };
    case 'shell':
      if (!node.json) throw new InstructionFailure('SHELL requires the arguments to be in JSON form', 'write SHELL ["/bin/sh", "-c"]');
      if (args.length === 0) throw new InstructionFailure('SHELL requires at least one argument');
      return { kind: 'SHELL', ...base, shell: args };
    case 'copy': {
      const sd = sourcesAndDest(node);
      const from = flags.string('from');
      const chown = flags.string('chown');
      const chmod = flags.string('chmod');
      return {
        kind: 'COPY',
        ...base,
        ...sd,
        ...(from === undefined ? {} : { from }),
        ...(chown === undefined ? {} : { chown }),
        ...(chmod === undefined ? {} : { chmod }),
        link: flags.bool('link') ?? false,
        parents: flags.bool('parents') ?? false,
        exclude: flags.strings('exclude'),
      };
    }
    case 'add': {
      const sd = sourcesAndDest(node);
      const chown = flags.string('chown');
      const chmod = flags.string('chmod');
      const checksum = flags.string('checksum');
      const unpack = flags.bool('unpack');
      return {
        kind: 'ADD',
        ...base,
        ...sd,
        ...(chown === undefined ? {} : { chown }),
        ...(chmod === undefined ? {} : { chmod }),
        ...(checksum === undefined ? {} : { checksum }),
        ...(unpack === undefined ? {} : { unpack }),
        link: flags.bool('link') ?? false,
        keepGitDir: flags.bool('keep-git-dir') ?? false,
        exclude: flags.strings('exclude'),
      };
    }
    case 'workdir':
      return { kind: 'WORKDIR', ...base, path: exactlyOne(node) };
    case 'env':
      return { kind: 'ENV', ...base, pairs: keyValues(node) };
    case 'label':
      return { kind: 'LABEL', ...base, pairs: keyValues(node) };
    case 'arg': {
      if (args.length === 0) throw new InstructionFailure('ARG requires at least one argument', 'write ARG <name>[=<default>]');
      const out: ArgInstruction = { kind: 'ARG', ...base, args: [] };
      for (const word of args) {
        const eq = word.indexOf('=');
        if (eq < 0) out.args.push({ name: word });
        else {
          if (eq === 0) throw new InstructionFailure('ARG names can not be blank');
          out.args.push({ name: word.slice(0, eq), defaultValue: word.slice(eq + 1) });
        }
      }
      return out;
    }
    case 'expose':
      if (args.length === 0) throw new InstructionFailure('EXPOSE requires at least one argument');
      return { kind: 'EXPOSE', ...base, ports: args };
    case 'volume':
      if (args.length === 0) throw new InstructionFailure('VOLUME requires at least one argument');
      for (const v of args) if (trimGoSpace(v) === '') throw new InstructionFailure('VOLUME specified can not be an empty string');
      return { kind: 'VOLUME', ...base, volumes: args };
    case 'user':
      return { kind: 'USER', ...base, user: exactlyOne(node) };
    case 'stopsignal':
      return { kind: 'STOPSIGNAL', ...base, signal: exactlyOne(node) };
    case 'maintainer':
      return { kind: 'MAINTAINER', ...base, maintainer: exactlyOne(node) };
    case 'healthcheck':
      return { kind: 'HEALTHCHECK', ...base, health: healthcheck(node, flags) };
    case 'onbuild': {
      const inner = node.args[0];
      if (inner === undefined || typeof inner === 'string') throw new InstructionFailure('ONBUILD requires at least one argument');
      const trigger = inner.cmd.toUpperCase();
      if (trigger === 'ONBUILD' || trigger === 'FROM' || trigger === 'MAINTAINER') {
        throw new InstructionFailure(`${trigger} isn't allowed as an ONBUILD trigger`);
      }
      const expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
      const parsed = toInstruction({ ...inner, heredocs: node.heredocs, original: expression }, location);
      return { kind: 'ONBUILD', ...base, expression, trigger: parsed };
    }
    default: {
      const suggestion = closest(node.keyword, INSTRUCTIONS);
      throw new InstructionFailure(
        `unknown instruction: ${node.keyword}`,
        suggestion !== undefined ? `did you mean ${suggestion}?` : `instructions are ${INSTRUCTIONS.join(', ')}`,
      );
    }
  }
}

/** The column of a flag on the instruction's first line, or the keyword's column. */
function flagColumn(node: DockerfileNode, flag: string | undefined): number {
  if (flag === undefined) return node.column;
  const at = node.original.indexOf(`--${flag}`);
  const firstLineLength = node.original.length;
  return at >= 0 && at < firstLineLength ? node.column + at : node.column;
}

/**
 * Parses a Dockerfile into typed instructions grouped in stages, with ARGs before the first FROM kept apart.
 * Throws DockerfileError: `E_DOCKERFILE_SYNTAX` for text the parser cannot read, `E_DOCKERFILE_INSTRUCTION`
 * for an unknown instruction, a bad flag or a wrong number of arguments, each at its line and column.
 */
export function parseDockerfile(text: string, options: ParseDockerfileOptions = {}): ParsedDockerfile {
  const file = options.file ?? 'Dockerfile';
  const ast = parseDockerfileAst(text, options);
  const globalArgs: ArgInstruction[] = [];
  const stages: DockerfileStage[] = [];
  const warnings: DockerfileParseWarning[] = ast.warnings.map((w) => ({ rule: w.rule, message: w.short, line: w.line }));
  for (const node of ast.nodes) {
    const location: InstructionLocation = { line: node.line, endLine: node.endLine, column: node.column };
    let instruction: Instruction;
    try {
      instruction = toInstruction(node, location);
    } catch (err) {
      if (err instanceof InstructionFailure) {
        throw new DockerfileError(
          err.code,
          err.message,
          { file, line: node.line, column: flagColumn(node, err.flag), endLine: node.endLine },
          err.hint === undefined ? {} : { hint: err.hint },
        );
      }
      throw err;
    }
    if (instruction.kind === 'MAINTAINER') {
      warnings.push({ rule: 'MaintainerDeprecated', message: 'MAINTAINER is deprecated; use LABEL org.opencontainers.image.authors=...', line: node.line });
    }
    if (instruction.kind === 'FROM') {
      const stage: DockerfileStage = { index: stages.length, from: instruction, instructions: [] };
      if (instruction.stageName !== undefined) {
        if (stages.some((s) => s.name === instruction.stageName)) {
          throw new DockerfileError(
            'E_DOCKERFILE_INSTRUCTION',
            `duplicate stage name ${goQuote(instruction.stageName)}`,
            {
              file,
              line: node.line,
              column: node.column,
              endLine: node.endLine,
            },
            { hint: 'give every stage its own name' },
          );
        }
        stage.name = instruction.stageName;
      }
      stages.push(stage);
      continue;
    }
    const stage = stages[stages.length - 1];
    if (stage === undefined) {
      if (instruction.kind === 'ARG') {
        globalArgs.push(instruction);
        continue;
      }
      throw new DockerfileError(
        'E_DOCKERFILE_INSTRUCTION',
        `no build stage in current context: ${keywordOf(instruction)} comes before the first FROM`,
        { file, line: node.line, column: node.column, endLine: node.endLine },
        { hint: 'only ARG may come before the first FROM' },
      );
    }
    stage.instructions.push(instruction);
  }
  if (stages.length === 0) {
    const last = ast.nodes[ast.nodes.length - 1] as DockerfileNode;
    throw new DockerfileError(
      'E_DOCKERFILE_INSTRUCTION',
      'no FROM instruction: a Dockerfile needs at least one build stage',
      {
        file,
        line: last.line,
        column: last.column,
      },
      { hint: 'start the Dockerfile with FROM <image>' },
    );
  }
  return { globalArgs, stages, escapeToken: ast.escapeToken, directives: ast.directives, warnings };
}

const keywordOf = (i: Instruction): string => i.kind;
