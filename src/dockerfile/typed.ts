import type { DockerfileNode } from './ast.js';
import { DockerfileError } from './errors.js';
import type { ParsedFlags } from './flags.js';
import { goQuote, trimGoSpace } from './gostr.js';
import type {
  ArgInstruction,
  DockerfileStage,
  FromInstruction,
  Instruction,
  InstructionLocation,
  DockerfileParseWarning,
  ParsedDockerfile,
} from './instructions.js';
import { InstructionFailure, closest, commandLine, exactlyOne, flagsFor, healthcheck, keyValues, sourcesAndDest, stringArgs } from './node-words.js';
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

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;
const RUN_NETWORKS = new Set(['default', 'none', 'host']);
const RUN_SECURITY = new Set(['sandbox', 'insecure']);

function toInstruction(node: DockerfileNode, location: InstructionLocation): Instruction {
  const base = { location, original: node.original };
  const flags = flagsFor(node);
  const args = stringArgs(node);
  switch (node.cmd) {
    case 'from':
      return fromInstruction(args, flags, base);
    case 'run':
      return runInstruction(node, flags, base);
    case 'cmd':
      return { kind: 'CMD', ...base, ...commandLine(node) };
    case 'entrypoint':
      return { kind: 'ENTRYPOINT', ...base, ...commandLine(node) };
    case 'shell':
      if (!node.json) throw new InstructionFailure('SHELL requires the arguments to be in JSON form', 'write SHELL ["/bin/sh", "-c"]');
      if (args.length === 0) throw new InstructionFailure('SHELL requires at least one argument');
      return { kind: 'SHELL', ...base, shell: args };
    case 'copy':
      return copyInstruction(node, flags, base);
    case 'add':
      return addInstruction(node, flags, base);
    case 'workdir':
      return { kind: 'WORKDIR', ...base, path: exactlyOne(node) };
    case 'env':
      return { kind: 'ENV', ...base, pairs: keyValues(node) };
    case 'label':
      return { kind: 'LABEL', ...base, pairs: keyValues(node) };
    case 'arg':
      return argInstruction(args, base);
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
    case 'onbuild':
      return onbuildInstruction(node, location, base);
    default: {
      const suggestion = closest(node.keyword, INSTRUCTIONS);
      throw new InstructionFailure(
        `unknown instruction: ${node.keyword}`,
        suggestion !== undefined ? `did you mean ${suggestion}?` : `instructions are ${INSTRUCTIONS.join(', ')}`,
      );
    }
  }
}

/** What every instruction carries: where it is and its text. */
type Base = { location: InstructionLocation; original: string };

function fromInstruction(args: string[], flags: ParsedFlags, base: Base): FromInstruction {
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

function runInstruction(node: DockerfileNode, flags: ParsedFlags, base: Base): Instruction {
  const args = stringArgs(node);
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

function copyInstruction(node: DockerfileNode, flags: ParsedFlags, base: Base): Instruction {
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

function addInstruction(node: DockerfileNode, flags: ParsedFlags, base: Base): Instruction {
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

function argInstruction(args: string[], base: Base): ArgInstruction {
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

/** ONBUILD keeps its trigger typed, checked as an instruction of its own (neither ONBUILD, FROM nor MAINTAINER). */
function onbuildInstruction(node: DockerfileNode, location: InstructionLocation, base: Base): Instruction {
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
