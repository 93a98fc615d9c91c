import { StrataError } from '../errors/index.js';

export type ModeChange = (mode: number, isDir: boolean) => number;

/**
 * `--chmod` as BuildKit reads it: an octal mode (`755`, `0644`, `4755`) replaces the permission
 * bits; a symbolic one (`u+x,go-w`, `a=rX`) edits them like chmod(1), `X` giving execute only to
 * directories and to files that already have it.
 */
export function parseChmod(spec: string, at: string): ModeChange {
  if (/^[0-7]{1,4}$/.test(spec)) {
    const bits = parseInt(spec, 8);
    return () => bits;
  }
  const clauses = spec.split(',');
  const ops: Array<(mode: number, isDir: boolean) => number> = [];
  for (const clause of clauses) {
    const m = /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(clause);
    if (!m) throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: invalid --chmod "${spec}": expected octal like 755 or symbolic like u+x,go-w`);
    const who = m[1] === '' || m[1]!.includes('a') ? 'ugo' : m[1]!;
    const op = m[2]!;
    const perms = m[3]!;
    ops.push((mode, isDir) => {
      const hasExec = (mode & 0o111) !== 0;
      let bits = 0;
      for (const w of who) {
        const shift = w === 'u' ? 6 : w === 'g' ? 3 : 0;
        if (perms.includes('r')) bits |= 4 << shift;
        if (perms.includes('w')) bits |= 2 << shift;
        if (perms.includes('x') || (perms.includes('X') && (isDir || hasExec))) bits |= 1 << shift;
        if (perms.includes('s') && w === 'u') bits |= 0o4000;
        if (perms.includes('s') && w === 'g') bits |= 0o2000;
        if (perms.includes('t') && w === 'o') bits |= 0o1000;
      }
      if (op === '+') return mode | bits;
      if (op === '-') return mode & ~bits;
      let mask = 0;
      for (const w of who) mask |= w === 'u' ? 0o4700 : w === 'g' ? 0o2070 : 0o1007;
      return (mode & ~mask) | bits;
    });
  }
  return (mode, isDir) => ops.reduce((m, op) => op(m, isDir), mode & 0o7777);
}
