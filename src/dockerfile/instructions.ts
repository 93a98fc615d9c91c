import type { DockerfileHeredoc } from './ast.js';

/**
 * Typed instructions. Words are kept raw (quotes, `$VAR` and escapes as written): the engine expands them
 * at build time with expandWord against the environment so far, as BuildKit does.
 */

export interface InstructionLocation {
  /** 1-based first and last physical line, and the keyword's column. */
  line: number;
  endLine: number;
  column: number;
}

interface InstructionBase {
  location: InstructionLocation;
  /** The logical source line (continuations joined). */
  original: string;
}

/** A command in shell form (run through the stage's SHELL) or exec form (a JSON array). */
export interface InstructionCommandLine {
  /** Exec form: the argv. Shell form: one element, the command text. */
  args: string[];
  /** True for shell form. */
  prependShell: boolean;
}

export interface FromInstruction extends InstructionBase {
  kind: 'FROM';
  image: string;
  /** The `AS name`, lower-cased as BuildKit does. */
  stageName?: string;
  platform?: string;
}

export interface RunInstruction extends InstructionBase, InstructionCommandLine {
  kind: 'RUN';
  /** Raw `--mount=` values, in order. */
  mounts: string[];
  network?: string;
  security?: string;
  /** Heredoc bodies referenced from the command (`RUN <<EOF`). */
  heredocs: DockerfileHeredoc[];
}

export interface CmdInstruction extends InstructionBase, InstructionCommandLine {
  kind: 'CMD';
}

export interface EntrypointInstruction extends InstructionBase, InstructionCommandLine {
  kind: 'ENTRYPOINT';
}

export interface ShellInstruction extends InstructionBase {
  kind: 'SHELL';
  shell: string[];
}

/** A COPY/ADD source written inline as a heredoc. */
export interface InstructionSourceContent {
  /** The heredoc name; it becomes the file name. */
  path: string;
  /** The body, with leading tabs already removed for `<<-`. */
  data: string;
  expand: boolean;
}

interface CopyLike extends InstructionBase {
  /** Source paths as written (not heredocs). */
  sources: string[];
  /** Sources given inline as heredocs. */
  sourceContents: InstructionSourceContent[];
  dest: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  exclude: string[];
}

export interface CopyInstruction extends CopyLike {
  kind: 'COPY';
  from?: string;
  parents: boolean;
}

export interface AddInstruction extends CopyLike {
  kind: 'ADD';
  checksum?: string;
  keepGitDir: boolean;
  /** `--unpack`: undefined when not given (archives from the context unpack, URLs do not). */
  unpack?: boolean;
}

export interface WorkdirInstruction extends InstructionBase {
  kind: 'WORKDIR';
  path: string;
}

export interface InstructionKeyValue {
  key: string;
  value: string;
  /** `=` for `k=v`, empty for the legacy `ENV k v` form. */
  separator: '=' | '';
}

export interface EnvInstruction extends InstructionBase {
  kind: 'ENV';
  pairs: InstructionKeyValue[];
}

export interface LabelInstruction extends InstructionBase {
  kind: 'LABEL';
  pairs: InstructionKeyValue[];
}

export interface InstructionArgDefinition {
  name: string;
  /** Undefined for `ARG name` without a default. */
  defaultValue?: string;
}

export interface ArgInstruction extends InstructionBase {
  kind: 'ARG';
  args: InstructionArgDefinition[];
}

export interface ExposeInstruction extends InstructionBase {
  kind: 'EXPOSE';
  ports: string[];
}

export interface VolumeInstruction extends InstructionBase {
  kind: 'VOLUME';
  volumes: string[];
}

export interface UserInstruction extends InstructionBase {
  kind: 'USER';
  user: string;
}

export interface StopsignalInstruction extends InstructionBase {
  kind: 'STOPSIGNAL';
  signal: string;
}

export interface DockerfileHealthcheck {
  /** `["NONE"]`, `["CMD", ...argv]` or `["CMD-SHELL", command]`, as in the image config. */
  test: string[];
  /** Durations in nanoseconds (0 when not given), as the image config stores them. */
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  /** 0 when not given. */
  retries: number;
}

export interface HealthcheckInstruction extends InstructionBase {
  kind: 'HEALTHCHECK';
  health: DockerfileHealthcheck;
}

export interface OnbuildInstruction extends InstructionBase {
  kind: 'ONBUILD';
  /** The trigger as it is stored in the image config (`RUN echo hi`). */
  expression: string;
  /** The trigger parsed, for validation and for tools. */
  trigger: Instruction;
}

export interface MaintainerInstruction extends InstructionBase {
  kind: 'MAINTAINER';
  /** Deprecated: Docker records it as the image author. */
  maintainer: string;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | ShellInstruction
  | CopyInstruction
  | AddInstruction
  | WorkdirInstruction
  | EnvInstruction
  | ArgInstruction
  | LabelInstruction
  | ExposeInstruction
  | VolumeInstruction
  | UserInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

export type InstructionKind = Instruction['kind'];

export interface DockerfileStage {
  /** 0-based position among stages. */
  index: number;
  /** Lower-cased `AS` name, when given. */
  name?: string;
  from: FromInstruction;
  /** The instructions after FROM, in order. */
  instructions: Exclude<Instruction, FromInstruction>[];
}

export interface DockerfileParseWarning {
  rule: string;
  message: string;
  line: number;
}

export interface ParsedDockerfile {
  /** ARGs before the first FROM: visible only to FROM lines unless redeclared in a stage. */
  globalArgs: ArgInstruction[];
  stages: DockerfileStage[];
  escapeToken: '\\' | '`';
  directives: { name: string; value: string; line: number }[];
  warnings: DockerfileParseWarning[];
}
