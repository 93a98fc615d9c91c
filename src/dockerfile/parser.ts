import type { DockerfileAst, DockerfileHeredoc, DockerfileNode, DockerfileWarning } from './ast.js';
import { DirectiveDuplicateError, DirectiveScanner, type Directive } from './directives.js';
import { DockerfileError } from './errors.js';
import { isGoSpace, trimLeftGoSpace } from './gostr.js';
import { parseHeredocsFromLine } from './heredoc.js';
import {
  LineParseError,
  parseHealthConfig,
  parseMaybeJson,
  parseMaybeJsonToList,
  parseNameVal,
  parseString,
  parseStringsWhitespaceDelimited,
  parseWords,
  splitCommand,
  type ParsedArgs,
} from './line-parsers.js';
import type { EscapeToken } from './shell.js';

export interface ParseDockerfileOptions {
  /** Name used in error locations; `Dockerfile` by default. */
  file?: string;
}

/** ONBUILD ONBUILD ... is refused past this depth instead of recursing without bound. */
const MAX_ONBUILD_DEPTH = 16;

const HEREDOC_COMMANDS = new Set(['add', 'copy', 'run']);

type LineParser = (rest: string, escapeToken: EscapeToken) => ParsedArgs;

const DISPATCH: Record<string, LineParser> = {
  add: (r) => parseMaybeJsonToList(r),
  arg: (r, e) => ({ args: parseWords(r, e), json: false }),
  cmd: (r) => parseMaybeJson(r),
  copy: (r) => parseMaybeJsonToList(r),
  entrypoint: (r) => parseMaybeJson(r),
  env: (r, e) => ({ args: parseNameVal(r, 'ENV', e), json: false }),
  expose: (r) => ({ args: parseStringsWhitespaceDelimited(r), json: false }),
  from: (r) => ({ args: parseStringsWhitespaceDelimited(r), json: false }),
  healthcheck: (r) => parseHealthConfig(r),
  label: (r, e) => ({ args: parseNameVal(r, 'LABEL', e), json: false }),
  maintainer: (r) => ({ args: parseString(r), json: false }),
  run: (r) => parseMaybeJson(r),
  shell: (r) => parseMaybeJson(r),
  stopsignal: (r) => ({ args: parseString(r), json: false }),
  user: (r) => ({ args: parseString(r), json: false }),
  volume: (r) => parseMaybeJsonToList(r),
  workdir: (r) => ({ args: parseString(r), json: false }),
};

interface RawLine {
  /** Line text without its `\n`. */
  text: string;
  /** Whether a `\n` followed it in the file. */
  newline: boolean;
}

/** Physical lines as BuildKit's scanner yields them; a final line without `\n` still counts. */
function splitPhysicalLines(text: string): RawLine[] {
  const parts = text.split('\n');
  const out: RawLine[] = new Array<RawLine>(parts.length);
  for (let i = 0; i < parts.length; i++) out[i] = { text: parts[i] as string, newline: i < parts.length - 1 };
  if (parts.length > 0 && parts[parts.length - 1] === '') out.pop();
  return out;
}

const trimNewline = (s: string): string => {
  let j = s.length;
  while (j > 0 && (s.charCodeAt(j - 1) === 0x0d || s.charCodeAt(j - 1) === 0x0a)) j--;
  return j === s.length ? s : s.slice(0, j);
};

const isComment = (s: string): boolean => trimLeftGoSpace(s).startsWith('#');

/**
 * Removes a trailing line-continuation token: the escape token, optionally followed by spaces and tabs,
 * not itself escaped (BuildKit's `([^E])E[ \t]*$|^E[ \t]*$`).
 */
function trimContinuation(line: string, escapeToken: string): { line: string; ends: boolean } {
  let j = line.length;
  while (j > 0 && (line.charCodeAt(j - 1) === 0x20 || line.charCodeAt(j - 1) === 0x09)) j--;
  if (j === 0 || line[j - 1] !== escapeToken) return { line, ends: true };
  if (j >= 2 && line[j - 2] === escapeToken) return { line, ends: true };
  return { line: line.slice(0, j - 1), ends: false };
}

/** Where `word` stands as a whole whitespace-separated word in `line`, or -1. */
function wordIndex(line: string, word: string): number {
  for (let from = 0; ; ) {
    const i = line.indexOf(word, from);
    if (i < 0) return -1;
    const before = i === 0 ? 0x20 : line.charCodeAt(i - 1);
    const after = i + word.length >= line.length ? 0x20 : line.charCodeAt(i + word.length);
    if (isGoSpace(before) && isGoSpace(after)) return i;
    from = i + 1;
  }
}

function columnOf(text: string): number {
  let i = 0;
  while (i < text.length) {
    const cp = text.codePointAt(i) as number;
    if (!isGoSpace(cp)) break;
    i += cp > 0xffff ? 2 : 1;
  }
  return i + 1;
}

interface NodeParts {
  cmd: string;
  keyword: string;
  flags: string[];
  args: (string | DockerfileNode)[];
  json: boolean;
}

/** newNodeFromLine: keyword, flags, then the instruction's own argument parser. */
function nodeFromLine(line: string, escapeToken: EscapeToken, depth: number): NodeParts {
  const { keyword, flags, rest } = splitCommand(line);
  const cmd = keyword.toLowerCase();
  if (cmd === 'onbuild') {
    if (rest === '') return { cmd, keyword, flags, args: [], json: false };
    if (depth >= MAX_ONBUILD_DEPTH) throw new LineParseError('ONBUILD triggers are nested too deeply');
    const inner = nodeFromLine(rest, escapeToken, depth + 1);
    const child: DockerfileNode = {
      ...inner,
      heredocs: [],
      original: rest,
      line: 0,
      endLine: 0,
      column: 0,
    };
    return { cmd, keyword, flags, args: [child], json: false };
  }
  const fn = DISPATCH[cmd];
  if (fn === undefined) return { cmd, keyword, flags, args: [], json: false };
  const parsed = fn(rest, escapeToken);
  return { cmd, keyword, flags, args: parsed.args, json: parsed.json };
}

function canContainHeredoc(parts: NodeParts): { ok: boolean; target: NodeParts | DockerfileNode } {
  let target: NodeParts | DockerfileNode = parts;
  if (parts.cmd === 'onbuild') {
    const inner = parts.args[0];
    if (inner !== undefined && typeof inner !== 'string') target = inner;
  }
  return { ok: HEREDOC_COMMANDS.has(target.cmd) && !target.json, target };
}

/**
 * Parses Dockerfile text into BuildKit's raw tree: directives, comments, continuations, heredocs, JSON
 * versus shell form and flags, with the line span and column of every instruction. Words are not expanded.
 * Throws DockerfileError (`E_DOCKERFILE_SYNTAX`) at the offending line.
 */
export function parseDockerfileAst(text: string, options: ParseDockerfileOptions = {}): DockerfileAst {
  const file = options.file ?? 'Dockerfile';
  const cursor = new LineCursor(splitPhysicalLines(text));
  const directivesScanner = new DirectiveScanner('#');
  const directives: Directive[] = [];
  let escapeToken: EscapeToken = '\\';
  const nodes: DockerfileNode[] = [];
  const warnings: DockerfileWarning[] = [];
  const fail: Fail = (reason, line, column = 1, endLine = line, hint) => {
    throw new DockerfileError('E_DOCKERFILE_SYNTAX', reason, { file, line, column, endLine }, hint === undefined ? {} : { hint });
  };
  while (!cursor.done) {
    let raw = cursor.next().text;
    if (cursor.line === 1 && raw.startsWith('\uFEFF')) raw = raw.slice(1);
    const column = columnOf(raw);
    let token = trimLeftGoSpace(trimNewline(raw));
    if (!directivesScanner.finished) {
      const d = scanDirective(directivesScanner, token, cursor.line, column, fail);
      if (d !== undefined) {
        if (d.name === 'escape') escapeToken = d.value as EscapeToken;
        directives.push(d);
      }
    }
    if (isComment(token)) token = '';
    const startLine = cursor.line;
    const first = trimContinuation(token, escapeToken);
    if (first.ends && first.line === '') continue;
    const { line, hasEmpty } = joinContinuations(cursor, first, escapeToken);
    if (hasEmpty) {
      warnings.push({
        rule: 'NoEmptyContinuation',
        short: `Empty continuation line found in: ${line}`,
        detail: 'Empty continuation lines will become errors in a future release',
        line: cursor.line,
      });
    }
    let parts: NodeParts;
    try {
      parts = nodeFromLine(line, escapeToken, 0);
    } catch (err) {
      if (err instanceof LineParseError) {
        // Point at the offending word when it sits on the instruction's first physical line.
        const at = err.at === undefined ? -1 : wordIndex(line, err.at);
        fail(err.message, startLine, at >= 0 && at < first.line.length ? column + at : column, cursor.line);
      }
      throw err;
    }
    const heredocs = canContainHeredoc(parts).ok && line.includes('<<') ? readHeredocs(cursor, line, fail, startLine, column) : [];
    nodes.push({
      cmd: parts.cmd,
      keyword: parts.keyword,
      flags: parts.flags,
      args: parts.cmd === 'onbuild' ? parts.args.map((a) => (typeof a === 'string' ? a : { ...a, line: startLine, endLine: cursor.line, column })) : parts.args,
      json: parts.json,
      heredocs,
      original: line,
      line: startLine,
      endLine: cursor.line,
      column,
    });
  }
  if (nodes.length === 0) {
    fail('file with no instructions', Math.max(cursor.line, 1), 1, Math.max(cursor.line, 1), 'a Dockerfile needs at least a FROM instruction');
  }
  return { nodes, directives, escapeToken, warnings };
}

type Fail = (reason: string, line: number, column?: number, endLine?: number, hint?: string) => never;

/** The physical lines of the file, read one at a time; `line` is the 1-based number of the last one read. */
class LineCursor {
  private index = 0;
  line = 0;

  constructor(private readonly lines: readonly RawLine[]) {}

  get done(): boolean {
    return this.index >= this.lines.length;
  }

  next(): RawLine {
    const raw = this.lines[this.index]!;
    this.index++;
    this.line++;
    return raw;
  }
}

/** A parser directive on one of the file's first lines (`# syntax=`, `# escape=`, `# check=`), checked. */
function scanDirective(scanner: DirectiveScanner, token: string, line: number, column: number, fail: Fail): Directive | undefined {
  let d: Directive | undefined;
  try {
    d = scanner.parseLine(token);
  } catch (err) {
    if (err instanceof DirectiveDuplicateError) fail(err.message, line);
    throw err;
  }
  if (d?.name === 'escape' && d.value !== '`' && d.value !== '\\') {
    fail(`invalid escape token '${d.value}' does not match \` or \\`, line, column, line, 'use `# escape=\\` or `# escape=``');
  }
  return d;
}

/** The logical line: the first physical line and its continuations, comments and empty lines between them skipped. */
function joinContinuations(cursor: LineCursor, first: { line: string; ends: boolean }, escapeToken: EscapeToken): { line: string; hasEmpty: boolean } {
  let pieces: string[] | undefined;
  let ends = first.ends;
  let hasEmpty = false;
  while (!ends && !cursor.done) {
    const next = cursor.next().text;
    if (isComment(next)) continue;
    const tok = trimNewline(next);
    if (trimLeftGoSpace(tok).length === 0) {
      hasEmpty = true;
      continue;
    }
    const cont = trimContinuation(tok, escapeToken);
    (pieces ??= [first.line]).push(cont.line);
    ends = cont.ends;
  }
  return { line: pieces === undefined ? first.line : pieces.join(''), hasEmpty };
}

/** The bodies of the heredocs a line opens, read from the lines after it up to each terminator. */
function readHeredocs(cursor: LineCursor, line: string, fail: Fail, startLine: number, column: number): DockerfileHeredoc[] {
  let found: Omit<DockerfileHeredoc, 'content'>[];
  try {
    found = parseHeredocsFromLine(line);
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err), startLine, column, cursor.line);
  }
  const heredocs: DockerfileHeredoc[] = [];
  for (const h of found) {
    let terminated = false;
    const body: string[] = [];
    while (!cursor.done) {
      const rl = cursor.next();
      let candidate = trimNewline(rl.text);
      if (h.chomp) candidate = candidate.replace(/^\t+/, '');
      if (candidate === h.name) {
        terminated = true;
        break;
      }
      body.push(rl.newline ? rl.text + '\n' : rl.text);
    }
    if (!terminated) fail(`unterminated heredoc ${h.name}`, startLine, column, cursor.line, `end the heredoc with a line that is exactly ${h.name}`);
    heredocs.push({ ...h, content: body.join('') });
  }
  return heredocs;
}
