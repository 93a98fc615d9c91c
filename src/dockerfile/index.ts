/** Public surface of the Dockerfile front end. Pure: strings in, typed values out, no I/O. */
export { DockerfileError, formatDiagnostic, type DockerfileLocation } from './errors.js';
export type { DockerfileAst, DockerfileHeredoc, DockerfileNode, DockerfileWarning } from './ast.js';
export { parseDockerfileAst, type ParseDockerfileOptions } from './parser.js';
export {
  detectDockerfileDirective,
  parseDockerfileDirectives,
  type DetectedDirective,
  type Directive as DockerfileDirective,
  type DirectiveName as DockerfileDirectiveName,
} from './directives.js';
export { chompHeredocContent, parseHeredocMarker, parseHeredocsFromLine, type HeredocMarker } from './heredoc.js';
export {
  expandShellWord,
  expandWord,
  expandWords,
  MAX_EXPANSION_DEPTH as MAX_SHELL_EXPANSION_DEPTH,
  type EscapeToken as DockerfileEscapeToken,
  type ShellEnv,
  type ShellExpandOptions,
  type ShellExpansion,
} from './shell.js';
export {
  cleanPath as cleanDockerignorePath,
  dockerignoreCandidates,
  DockerignoreMatcher,
  readDockerignorePatterns,
  selectDockerignore,
  type DockerignoreMatchInfo,
  type DockerignoreSource,
} from './dockerignore.js';
export { parseDockerfile } from './typed.js';
export { parseGoDuration as parseDockerfileDuration } from './duration.js';
export type {
  AddInstruction,
  InstructionArgDefinition,
  ArgInstruction,
  CmdInstruction,
  CopyInstruction,
  DockerfileParseWarning,
  DockerfileStage,
  EntrypointInstruction,
  EnvInstruction,
  ExposeInstruction,
  FromInstruction,
  DockerfileHealthcheck,
  HealthcheckInstruction,
  Instruction,
  InstructionCommandLine,
  InstructionKeyValue,
  InstructionKind,
  InstructionLocation,
  InstructionSourceContent,
  LabelInstruction,
  MaintainerInstruction,
  OnbuildInstruction,
  ParsedDockerfile,
  RunInstruction,
  ShellInstruction,
  StopsignalInstruction,
  UserInstruction,
  VolumeInstruction,
  WorkdirInstruction,
} from './instructions.js';
export { dockerfileAstToJson, type DockerfileAstJsonNode } from './ast-json.js';
