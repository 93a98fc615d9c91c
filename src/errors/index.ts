/**
 * The one error type strata throws. `code` is stable and meant for programs; `message` names the
 * thing and where, for people; `hint` says what to try.
 */
export type ErrorCode =
  | 'E_INTERNAL'
  | 'E_USAGE'
  | 'E_IO'
  | 'E_NOT_FOUND'
  | 'E_EXISTS'
  | 'E_DIGEST_INVALID'
  | 'E_DIGEST_MISMATCH'
  | 'E_SIZE_MISMATCH'
  | 'E_MANIFEST_INVALID'
  | 'E_CONFIG_INVALID'
  | 'E_LAYOUT_INVALID'
  | 'E_REF_INVALID'
  | 'E_TRANSPORT_INVALID'
  | 'E_LAYER_INVALID'
  | 'E_LAYER_UNSAFE'
  | 'E_PLATFORM_MISMATCH'
  | 'E_DOCKERFILE_SYNTAX'
  | 'E_DOCKERFILE_INSTRUCTION'
  | 'E_DOCKERIGNORE_PATTERN'
  | 'E_EXPANSION'
  | 'E_REGISTRY'
  | 'E_REGISTRY_UNAUTHORIZED'
  | 'E_REGISTRY_DENIED'
  | 'E_REGISTRY_NOT_FOUND'
  | 'E_REGISTRY_UNSUPPORTED'
  | 'E_REGISTRY_UNREACHABLE'
  | 'E_REGISTRY_INSECURE'
  | 'E_CREDENTIALS'
  | 'E_CONTEXT_ESCAPE'
  | 'E_BUILD'
  | 'E_RUN_UNSUPPORTED'
  | 'E_RUN_FAILED'
  | 'E_ABORTED'
  | 'E_LOCKED'
  | 'E_STORE_INVALID';

export interface StrataErrorOptions {
  hint?: string | undefined;
  cause?: unknown | undefined;
}

export class StrataError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** Where, and what was being done, when this error wraps its `cause` to say so (see `wrapError`). */
  readonly context: string | undefined;

  constructor(code: ErrorCode, message: string, options: StrataErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StrataError';
    this.code = code;
    this.hint = options.hint;
    this.context = undefined;
  }
}

/** A failure seen from further out; made by `wrapError`. */
class WrappedError extends StrataError {
  override readonly context: string;
  override readonly cause: StrataError;

  constructor(cause: StrataError, context: string, hint: string | undefined) {
    super(cause.code, `${context}: ${cause.message}`, { hint: hint ?? cause.hint, cause });
    this.context = context;
    this.cause = cause;
  }
}

/**
 * Adds context (`Dockerfile:7: COPY failed`) to a failure by wrapping it: the code is kept, the hint too
 * unless one is given, and the failure stays reachable as `cause` with its own type, message and fields (a
 * DockerfileError's location among them); the message reads `context: cause's message`. Anything that is
 * not a StrataError is returned as it is.
 */
export function wrapError(cause: unknown, context: string, hint?: string): unknown {
  return cause instanceof StrataError ? new WrappedError(cause, context, hint) : cause;
}

export function isStrataError(value: unknown, code?: ErrorCode): value is StrataError {
  return value instanceof StrataError && (code === undefined || value.code === code);
}

/** Node's errno code of a caught value (`ENOENT`, `EACCES`, ...), or undefined. */
export function errnoCode(value: unknown): string | undefined {
  if (typeof value === 'object' && value !== null && 'code' in value) {
    const code = (value as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Turns a file-system failure into a StrataError that names the path and the cause in words. */
export function ioError(action: string, path: string, cause: unknown): StrataError {
  const code = errnoCode(cause);
  const why =
    code === 'ENOENT'
      ? 'no such file or directory'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'ENOTDIR'
          ? 'a parent is not a directory'
          : code === 'EISDIR'
            ? 'is a directory'
            : code === 'ENOSPC'
              ? 'no space left on device'
              : code === 'EDQUOT'
                ? 'disk quota exceeded'
                : code === 'EIO'
                  ? 'input/output error'
                  : code === 'EROFS'
                    ? 'read-only file system'
                    : code === 'ENAMETOOLONG'
                      ? 'file name too long'
                      : code === 'EMFILE' || code === 'ENFILE'
                        ? 'too many open files'
                        : cause instanceof Error
                          ? cause.message
                          : String(cause);
  return new StrataError(code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_IO', `cannot ${action} ${path}: ${why}`, { cause });
}
