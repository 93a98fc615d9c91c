import { StrataError } from '../errors/index.js';

/** One `RUN --mount=...` as written, parsed into fields (values already expanded). */
export interface MountSpec {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  target?: string;
  source?: string;
  from?: string;
  id?: string;
  readonly: boolean;
  required: boolean;
  mode?: number;
  uid?: number;
  gid?: number;
  env?: string;
}

const TYPES = new Set(['bind', 'cache', 'tmpfs', 'secret', 'ssh']);

/** Parses BuildKit's CSV mount syntax: `type=cache,target=/root/.cache,id=pip,sharing=locked`. */
export function parseMountSpec(text: string, at: string): MountSpec {
  const fields = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? 'true' : part.slice(eq + 1).trim();
    if (key) fields.set(key, value);
  }
  const type = fields.get('type') ?? 'bind';
  if (!TYPES.has(type))
    throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: unknown --mount type "${type}"`, { hint: 'types: bind, cache, tmpfs, secret, ssh' });
  const bool = (v: string | undefined): boolean => v === 'true' || v === '1' || v === '';
  const int = (key: string, radix = 10): number | undefined => {
    const v = fields.get(key);
    if (v === undefined) return undefined;
    const n = parseInt(v, radix);
    if (!Number.isFinite(n)) throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: --mount ${key}=${v} is not a number`);
    return n;
  };
  const spec: MountSpec = {
    type: type as MountSpec['type'],
    readonly:
      bool(fields.get('readonly') ?? fields.get('ro') ?? (type === 'bind' ? 'true' : 'false')) &&
      fields.get('rw') !== 'true' &&
      fields.get('readwrite') !== 'true',
    required: bool(fields.get('required') ?? 'false'),
  };
  const target = fields.get('target') ?? fields.get('dst') ?? fields.get('destination');
  if (target !== undefined) spec.target = target;
  const source = fields.get('source') ?? fields.get('src');
  if (source !== undefined) spec.source = source;
  const from = fields.get('from');
  if (from !== undefined) spec.from = from;
  const id = fields.get('id');
  if (id !== undefined) spec.id = id;
  const env = fields.get('env');
  if (env !== undefined) spec.env = env;
  const mode = int('mode', 8);
  if (mode !== undefined) spec.mode = mode;
  const uid = int('uid');
  if (uid !== undefined) spec.uid = uid;
  const gid = int('gid');
  if (gid !== undefined) spec.gid = gid;
  if (spec.type === 'secret' && spec.target === undefined && spec.env === undefined) {
    if (!spec.id) throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: --mount=type=secret needs id= or target=`);
    spec.target = `/run/secrets/${spec.id}`;
  }
  if (spec.type === 'ssh' && spec.target === undefined) spec.target = '/run/buildkit/ssh_agent.0';
  // A secret given only as env= goes into the variable and is not mounted at all.
  if (spec.target === undefined && !(spec.type === 'secret' && spec.env !== undefined)) {
    throw new StrataError('E_DOCKERFILE_INSTRUCTION', `${at}: --mount=type=${spec.type} needs target=`);
  }
  return spec;
}
