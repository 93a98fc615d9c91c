/** The raw tree, shaped like BuildKit's parser.Node but as plain data. */

export interface DockerfileHeredoc {
  /** The terminator word, quotes removed. */
  name: string;
  /** The file descriptor before `<<` (`3<<EOF`), 0 when none. */
  fileDescriptor: number;
  /** False when any part of the terminator was quoted: the body is then taken literally. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body when it is used (the raw content keeps them). */
  chomp: boolean;
  /** The raw body, line endings kept. */
  content: string;
}

export interface DockerfileNode {
  /** The instruction keyword, lower-cased. */
  cmd: string;
  /** The keyword as written. */
  keyword: string;
  /** Flags as written but de-quoted, e.g. `--from=build`. */
  flags: string[];
  /**
   * Arguments as BuildKit's parser keeps them: ENV/LABEL as name, value, separator triples; ONBUILD's inner
   * instruction as one nested node; RUN/CMD/ENTRYPOINT/SHELL shell form as a single string.
   */
  args: (string | DockerfileNode)[];
  /** Whether the arguments were written as a JSON array (exec form). */
  json: boolean;
  heredocs: DockerfileHeredoc[];
  /** The logical line (continuations joined, comments removed). */
  original: string;
  /** 1-based first and last physical line (continuations and heredoc bodies included). */
  line: number;
  endLine: number;
  /** 1-based column of the keyword on its first line. */
  column: number;
}

export interface DockerfileWarning {
  /** A stable identifier for the kind of warning. */
  rule: 'NoEmptyContinuation';
  short: string;
  detail: string;
  line: number;
}

export interface DockerfileAst {
  nodes: DockerfileNode[];
  directives: import('./directives.js').Directive[];
  escapeToken: import('./shell.js').EscapeToken;
  warnings: DockerfileWarning[];
}
