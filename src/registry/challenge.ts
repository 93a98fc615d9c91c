/** One authentication challenge from a `WWW-Authenticate` header. */
export interface AuthChallenge {
  /** Lower-cased: `bearer`, `basic`, `negotiate`, ... */
  scheme: string;
  /** Parameter names lower-cased; values unquoted. */
  params: Record<string, string>;
  /** The `token68` form some schemes use instead of parameters. */
  token68?: string;
}

const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * Parses a `WWW-Authenticate` value (RFC 9110 §11.6.1) that may hold several challenges, with
 * quoted strings that contain commas (`scope="repository:a:pull,push"`) and escapes.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const s = header;
  let i = 0;
  const out: AuthChallenge[] = [];

  const skipWs = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const skipWsAndCommas = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i] as string)) i++;
    return s.slice(start, i);
  };
  const quoted = (): string => {
    let value = '';
    i++; // opening quote
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      value += s[i];
      i++;
    }
    i++; // closing quote (or end)
    return value;
  };
  /** Whether a `name=` parameter (not a new challenge or token68) starts at i. */
  const paramAhead = (): boolean => {
    const save = i;
    skipWs();
    const name = token();
    skipWs();
    const isParam = name !== '' && s[i] === '=' && s[i + 1] !== '=';
    i = save;
    return isParam;
  };

  while (i < s.length) {
    skipWsAndCommas();
    const scheme = token();
    if (scheme === '') {
      i++; // not a token character: skip it rather than loop forever
      continue;
    }
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    skipWs();
    if (i < s.length && s[i] !== ',' && !paramAhead()) {
      const start = i;
      while (i < s.length && s[i] !== ',' && s[i] !== ' ') i++;
      challenge.token68 = s.slice(start, i);
      continue;
    }
    while (i < s.length) {
      const save = i;
      skipWsAndCommas();
      if (!paramAhead()) {
        i = save;
        break;
      }
      const name = token().toLowerCase();
      skipWs();
      i++; // '='
      skipWs();
      challenge.params[name] = s[i] === '"' ? quoted() : token();
      skipWs();
    }
    // Everything up to the next challenge's scheme belongs to this one.
    skipWsAndCommas();
  }
  return out;
}

/** The challenge strata can answer, in order of preference: Bearer, then Basic. */
export function pickChallenge(challenges: AuthChallenge[]): AuthChallenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer' && c.params.realm) ?? challenges.find((c) => c.scheme === 'basic');
}
