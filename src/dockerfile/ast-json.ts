import type { DockerfileHeredoc, DockerfileNode } from './ast.js';

/** One instruction of `strata parse --ast`: BuildKit's node, flattened to plain JSON. */
export interface DockerfileAstJsonNode {
  cmd: string;
  flags: string[];
  args: (string | DockerfileAstJsonNode)[];
  heredocs: DockerfileHeredoc[];
  line: number;
  endLine: number;
}

export function dockerfileAstToJson(nodes: readonly DockerfileNode[]): DockerfileAstJsonNode[] {
  const convert = (n: DockerfileNode): DockerfileAstJsonNode => ({
    cmd: n.cmd,
    flags: n.flags,
    args: n.args.map((a) => (typeof a === 'string' ? a : convert(a))),
    heredocs: n.heredocs,
    line: n.line,
    endLine: n.endLine,
  });
  return nodes.map(convert);
}
